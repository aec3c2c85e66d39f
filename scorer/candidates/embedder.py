"""A bi-encoder run through ONNX Runtime: texts -> L2-normalised mean- or CLS-pooled embeddings (no torch).

An embedder directory holds `model.onnx` (token states out), `tokenizer.json` and `embedder.json`
(written by `export.embedder`). Texts are tokenized a window at a time; the scorer's runtime does the rest
(`scorer.session` opens the model, `scorer.batching` plans and pads the batches, so padding stays small and
memory flat); only the pooling is the embedder's own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from scorer.artifact import MAX_LENGTH_LIMIT, sha256_file
from scorer.batching import pad_batch, plan_for, profile_for
from scorer.errors import InputError
from scorer.paths import cache_dir
from scorer.session import CPU, OnnxModel

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST = "embedder.json"
MAX_LENGTH = 64  # titles: longer texts are truncated
WINDOW = 8192  # texts tokenized and sorted together
POOLINGS = ("mean", "cls")
DEFAULT_NAME = "all-MiniLM-L6-v2"


def default_embedder_dir(model: str | None = None) -> Path:
    """Where the embedder of `model` (default all-MiniLM-L6-v2) is cached: under the product's cache
    (`scorer.paths.cache_dir`), one folder per model name or path."""
    name = DEFAULT_NAME if model is None else re.sub(r"[^A-Za-z0-9_.-]+", "--", model_identity(model).strip("/"))
    return cache_dir() / "embedders" / name


def model_identity(model: Path | str) -> str:
    """How an embedder's manifest names its base model: a local directory's absolute path, else the hub name."""
    return str(Path(model).resolve()) if Path(model).is_dir() else str(model)


def is_embedder_dir(directory: Path) -> bool:
    return all((directory / name).is_file() for name in (MODEL_FILE, TOKENIZER_FILE, MANIFEST))


def load_manifest(directory: Path) -> dict[str, object]:
    """`embedder.json`, validated, after checking that `model.onnx` is the file it records (sha256), as
    `scorer run` checks an artifact's variants: another model copied into the directory is refused."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: must be a JSON object")
    manifest.setdefault("pooling", "mean")
    manifest.setdefault("max_length", MAX_LENGTH)
    if manifest["pooling"] not in POOLINGS:
        raise InputError(f"{path}: unknown pooling {manifest['pooling']!r} (known: {', '.join(POOLINGS)})")
    length = manifest["max_length"]
    if isinstance(length, bool) or not isinstance(length, int) or not 2 <= length <= MAX_LENGTH_LIMIT:
        raise InputError(f"{path}: max_length must be an integer in 2..{MAX_LENGTH_LIMIT}, not {length!r}")
    recorded = manifest.get("sha256")
    if not isinstance(recorded, str):
        raise InputError(f"{path}: no sha256 of {MODEL_FILE}; export the embedder again")
    if sha256_file(directory / MODEL_FILE) != recorded:
        raise InputError(
            f"{directory / MODEL_FILE}: not the model {MANIFEST} records (its sha256 differs); export the embedder "
            "again or restore the file"
        )
    return manifest


@dataclass
class EncodeStats:
    """What encoding cost: real (unpadded) tokens and seconds."""

    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None


class Embedder:
    """An ONNX sentence embedder on the CPU, through the scorer's session, batching and padding.
    `encode` returns float32 rows of unit length."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        if not is_embedder_dir(directory):
            raise InputError(
                f"{directory}: not an embedder directory (needs {MODEL_FILE}, {TOKENIZER_FILE}, {MANIFEST})"
            )
        self.manifest = load_manifest(directory)
        self.model = OnnxModel.load(directory / MODEL_FILE, CPU, threads)
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self.pad_id = int((self.tokenizer.padding or {}).get("pad_id", 0))  # as tokenizer.json records it; else 0
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.manifest.get("max_length", MAX_LENGTH)))
        self.dim = int(self.model.session.get_outputs()[0].shape[-1])
        self.pooling = self.manifest["pooling"]
        self.stats = EncodeStats()

    def _pool(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One padded batch's token states pooled as the model was trained (padding masked out), unit length."""
        states = self.model.run(feeds)
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            weights = feeds["attention_mask"][:, :, None].astype(np.float32)
            pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's token count (special tokens included, after truncation), without encoding; a window at
        a time (tokenizer encodings held at once cost ~3 KB per text, measured on 60k titles)."""
        lengths = np.zeros(len(texts), dtype=np.int64)
        for first in range(0, len(texts), WINDOW):
            encodings = self.tokenizer.encode_batch(list(texts[first : first + WINDOW]))
            lengths[first : first + len(encodings)] = [len(e.ids) for e in encodings]
        return lengths

    def encode(
        self, texts: Sequence[str], advance: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed `texts` (in order): an (n, dim) float32 array, and each text's token count (special
        tokens included, after truncation). `advance(count)` reports progress."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        start = time.perf_counter()
        profile = profile_for(self.model.provider)
        for first in range(0, len(texts), WINDOW):
            encodings = self.tokenizer.encode_batch(list(texts[first : first + WINDOW]))
            ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
            window = np.fromiter((len(row) for row in ids), np.int64, len(ids))
            lengths[first : first + len(ids)] = window
            for batch in plan_for(window, profile):
                out[batch.rows + first] = self._pool(pad_batch(ids, None, batch, self.pad_id))
                if advance:
                    advance(len(batch.rows))
        self.stats.tokens += int(lengths.sum())
        self.stats.seconds += time.perf_counter() - start
        return out, lengths
