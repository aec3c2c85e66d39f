"""fp16 graph for CUDA: ONNX Runtime's transformer fp16 conversion of the fp32 graph, with fp32
inputs/outputs, RoPE and the classification head kept in fp32, and mask constants clamped to a finite
fp16 value (so sliding-window rows that are all padding cannot turn into NaN)."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.onnx_model import OnnxModel

from export.architectures import Architecture, keeps_fp32

MAX_FINITE = 1e4  # attention-mask constants (finfo.min) become -1e4, not -inf


def convert_fp16(fp32_path: Path, out_path: Path, architecture: Architecture | None = None) -> dict[str, object]:
    """Write the fp16 graph, keeping in fp32 what `architecture` (None: any supported one) keeps; returns the
    recipe (what was kept in fp32) for the manifest."""
    model = OnnxModel(onnx.load(str(fp32_path)))
    keep = [node.name for node in model.model.graph.node if keeps_fp32(node.name, node.op_type, architecture)]
    model.convert_float_to_float16(
        keep_io_types=True, node_block_list=keep, max_finite_val=MAX_FINITE, use_symbolic_shape_infer=True
    )
    model.save_model_to_file(str(out_path))
    return {"keep_io_types": True, "max_finite_val": MAX_FINITE, "nodes_kept_fp32": len(keep)}
