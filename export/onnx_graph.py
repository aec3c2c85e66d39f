"""fp32 ONNX graph of a CrossEncoder checkpoint: optimum's exporter, then ONNX Runtime's transformer
fusions where they help (BERT family; ModernBERT's graph gains nothing from them, benchmarks/NOTES.md 4)."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from optimum.exporters.onnx import main_export
from transformers import AutoConfig

from export.architectures import architecture

OPSET = 17


def export_raw(checkpoint: Path, work_dir: Path) -> Path:
    """Export `checkpoint` as a text-classification graph of standard ONNX ops; returns its path."""
    raw_dir = work_dir / "optimum"
    logging.getLogger("optimum").setLevel(logging.ERROR)
    main_export(
        str(checkpoint),
        output=raw_dir,
        task="text-classification",
        library_name="transformers",
        opset=OPSET,
        do_validation=False,
        local_files_only=True,
        model_kwargs=None,
    )
    return raw_dir / "model.onnx"


def fuse(raw: Path, checkpoint: Path, fused: Path) -> bool:
    """Write the fp32 graph with ORT's transformer fusions where the architecture has them (else a copy);
    returns whether fusions were applied."""
    config = AutoConfig.from_pretrained(str(checkpoint))
    fusion = architecture(config.model_type, str(checkpoint / "config.json")).fusion
    if fusion is not None:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(
            str(raw),
            model_type=fusion,
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=1,
            use_gpu=False,
        )
        optimized.save_model_to_file(str(fused))
        return True
    onnx.save(onnx.load(str(raw)), str(fused))
    return False


def input_names(path: Path) -> list[str]:
    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
