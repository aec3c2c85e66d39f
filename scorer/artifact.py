"""The exported artifact: its `manifest.json`, file checksums and loading rules.

Layout of an artifact directory::

    manifest.json             format version, activation, max_length, inputs, variants, gates, source, versions
    tokenizer.json            the checkpoint's fast tokenizer
    model.fp32.onnx           reference graph (ONNX Runtime fp32; OpenVINO runs it as bf16 and fp32-openvino)
    model.int8.onnx           CPU graph (ONNX Runtime)
    model.fp16.onnx           CUDA graph
    model.int8-openvino.onnx  int8 weights for OpenVINO
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scorer.activation import ACTIVATIONS
from scorer.errors import InputError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
# bf16 and fp32-openvino: OpenVINO running the fp32 file (no file of their own) in bf16 / f32; int8-openvino:
# OpenVINO running a graph of int8 weights with int8 activations quantized per token (export.openvino_int8).
MAX_LENGTH_LIMIT = 1 << 16


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Variant:
    """One ONNX graph of the artifact and the parity measured for it at export."""

    file: str
    sha256: str
    parity: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything `scorer run` needs to know about an artifact."""

    activation: str
    max_length: int
    input_names: list[str]
    tokenizer: str
    tokenizer_sha256: str
    pad_token_id: int
    variants: dict[str, Variant]
    gates: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = MANIFEST_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def write(self, directory: Path) -> None:
        (directory / MANIFEST_NAME).write_text(self.to_json())


# Manifest field -> the JSON type it must have (bool is excluded from int by `_check_type`).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "activation": str,
    "max_length": int,
    "input_names": list,
    "tokenizer": str,
    "tokenizer_sha256": str,
    "pad_token_id": int,
    "variants": dict,
    "gates": dict,
    "source": dict,
    "versions": dict,
    "format_version": int,
}
_VARIANT_TYPES: dict[str, type] = {"file": str, "sha256": str, "parity": dict, "recipe": dict}


def _check_type(path: Path, where: str, value: Any, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InputError(f"{path}: {where} must be a JSON {expected}, not {type(value).__name__} {value!r:.60}")


SIDES = ("query", "candidate")  # the sides of a pair whose text specs source.text records


def _check_file_name(path: Path, where: str, name: str) -> None:
    """Only plain file names inside the artifact may be loaded: no directories, `..`, or absolute paths."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InputError(f"{path}: {where} {name!r} must be a plain file name inside the artifact directory")


def _validate(path: Path, raw: dict[str, Any]) -> Manifest:
    missing = [name for name in _FIELD_TYPES if name not in raw and name not in ("gates", "source", "versions")]
    if missing:
        raise InputError(f"{path}: malformed manifest (missing {', '.join(missing)})")
    unknown = sorted(set(raw) - set(_FIELD_TYPES))
    if unknown:
        raise InputError(f"{path}: malformed manifest (unknown field(s) {', '.join(unknown)})")
    for name, kind in _FIELD_TYPES.items():
        if name in raw:
            _check_type(path, name, raw[name], kind)
    if raw["activation"] not in ACTIVATIONS:
        raise InputError(f"{path}: unknown activation {raw['activation']!r} (known: {', '.join(ACTIVATIONS)})")
    if not 2 <= raw["max_length"] <= MAX_LENGTH_LIMIT:
        raise InputError(f"{path}: max_length {raw['max_length']} is outside 2..{MAX_LENGTH_LIMIT}")
    if not all(isinstance(name, str) for name in raw["input_names"]):
        raise InputError(f"{path}: input_names must be a list of strings")
    _check_file_name(path, "tokenizer", raw["tokenizer"])
    text = raw.get("source", {}).get("text")
    if text is not None and not (isinstance(text, dict) and all(isinstance(text.get(s), str) for s in SIDES)):
        raise InputError(f"{path}: source.text must map query and candidate to column specs, not {text!r}")
    variants = {}
    for precision, spec in raw["variants"].items():
        _check_type(path, f"variants.{precision}", spec, dict)
        unknown = sorted(set(spec) - set(_VARIANT_TYPES))
        if unknown or "file" not in spec or "sha256" not in spec:
            raise InputError(f"{path}: variants.{precision} needs file and sha256 (unknown: {unknown or 'none'})")
        for name, kind in _VARIANT_TYPES.items():
            if name in spec:
                _check_type(path, f"variants.{precision}.{name}", spec[name], kind)
        _check_file_name(path, f"variants.{precision}.file", spec["file"])
        variants[precision] = Variant(**spec)
    return Manifest(variants=variants, **{k: v for k, v in raw.items() if k != "variants"})


def load_manifest(directory: Path) -> Manifest:
    """Read and validate `directory/manifest.json`; any problem is an InputError naming the file."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.exists():
        raise InputError(f"artifact directory {directory} does not exist")
    if not directory.is_dir():
        raise InputError(f"artifact {directory} is a file; give the artifact directory (the one holding manifest.json)")
    if not path.is_file():
        raise InputError(
            f"{directory} is not an artifact: {MANIFEST_NAME} is missing (create one with `scorer export`)"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a manifest must be a JSON object, not {type(raw).__name__}")
    version = raw.get("format_version")
    if version != MANIFEST_VERSION:
        raise InputError(f"{path}: unknown manifest format_version {version!r} (this scorer reads {MANIFEST_VERSION})")
    return _validate(path, raw)


def artifact_file(directory: Path, name: str, what: str) -> Path:
    """A file named by the manifest, proven to lie inside the artifact directory (no link leading out)."""
    directory = Path(directory)
    path = directory / name
    if not path.is_file():
        raise InputError(f"artifact {directory}: {name} ({what}) is missing")
    if path.resolve().parent != directory.resolve():
        raise InputError(f"artifact {directory}: {name} ({what}) links outside the artifact directory; refused")
    return path


def variant_path(directory: Path, manifest: Manifest, precision: str) -> Path:
    """Path of one variant's ONNX file, after checking that it lies inside the artifact and matches its sha256."""
    if precision not in manifest.variants:
        raise InputError(
            f"artifact {directory} has no {precision} variant (it has: {', '.join(manifest.variants) or 'none'})"
        )
    variant = manifest.variants[precision]
    path = artifact_file(directory, variant.file, precision)
    if sha256_file(path) != variant.sha256:
        raise InputError(
            f"artifact {directory}: {variant.file} does not match the sha256 in {MANIFEST_NAME} "
            "(the file was altered or replaced; re-export or run `scorer verify`)"
        )
    return path
