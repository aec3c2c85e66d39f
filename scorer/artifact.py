"""The exported artifact: its `manifest.json`, file checksums and loading rules.

Layout of an artifact directory::

    manifest.json         format version, activation, max_length, inputs, variants, gates, versions
    tokenizer.json        the checkpoint's fast tokenizer
    model.fp32.onnx       reference graph
    model.int8.onnx       CPU graph
    model.fp16.onnx       CUDA graph
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scorer.errors import InputError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
PRECISIONS = ("fp32", "int8", "fp16")


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


def load_manifest(directory: Path) -> Manifest:
    """Read and validate `directory/manifest.json`; any problem is an InputError naming the file."""
    path = Path(directory) / MANIFEST_NAME
    if not Path(directory).is_dir():
        raise InputError(f"artifact directory {directory} does not exist")
    if not path.is_file():
        raise InputError(
            f"{directory} is not an artifact: {MANIFEST_NAME} is missing (create one with `scorer export`)"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    version = raw.get("format_version")
    if version != MANIFEST_VERSION:
        raise InputError(f"{path}: unknown manifest format_version {version!r} (this scorer reads {MANIFEST_VERSION})")
    try:
        variants = {name: Variant(**spec) for name, spec in raw.pop("variants").items()}
        return Manifest(variants=variants, **raw)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: malformed manifest ({exc})") from None


def variant_path(directory: Path, manifest: Manifest, precision: str, *, check_sha: bool = True) -> Path:
    """Path of one variant's ONNX file, after checking that it exists and matches its sha256."""
    if precision not in manifest.variants:
        raise InputError(
            f"artifact {directory} has no {precision} variant (it has: {', '.join(manifest.variants) or 'none'})"
        )
    variant = manifest.variants[precision]
    path = Path(directory) / variant.file
    if not path.is_file():
        raise InputError(f"artifact {directory}: {variant.file} ({precision}) is missing")
    if check_sha and sha256_file(path) != variant.sha256:
        raise InputError(
            f"artifact {directory}: {variant.file} does not match the sha256 in {MANIFEST_NAME} "
            "(the file was altered or replaced; re-export or run `scorer verify`)"
        )
    return path
