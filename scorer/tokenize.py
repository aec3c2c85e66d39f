"""Pair tokenization with the artifact's fast tokenizer (the `tokenizers` library, no transformers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from scorer.artifact import Manifest, sha256_file
from scorer.errors import InputError


@dataclass
class EncodedPairs:
    """Token ids of a window of pairs, unpadded, plus what truncation cut."""

    ids: list[np.ndarray]
    type_ids: list[np.ndarray]
    lengths: np.ndarray
    truncated: int


class PairTokenizer:
    """Encodes (query, candidate) pairs as `CrossEncoder` does: longest-first truncation to max_length."""

    def __init__(self, path: Path, max_length: int) -> None:
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length, strategy="longest_first")

    @classmethod
    def from_artifact(cls, directory: Path, manifest: Manifest) -> PairTokenizer:
        path = Path(directory) / manifest.tokenizer
        if not path.is_file():
            raise InputError(f"artifact {directory}: tokenizer file {manifest.tokenizer} is missing")
        if sha256_file(path) != manifest.tokenizer_sha256:
            raise InputError(
                f"artifact {directory}: {manifest.tokenizer} does not match the tokenizer the model was exported with"
            )
        return cls(path, manifest.max_length)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, queries: list[str], candidates: list[str]) -> EncodedPairs:
        """Tokenize a window of pairs in parallel (the Rust tokenizer releases the GIL)."""
        encodings = self._tokenizer.encode_batch(list(zip(queries, candidates, strict=True)))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        type_ids = [np.asarray(e.type_ids, dtype=np.int64) for e in encodings]
        truncated = sum(1 for e in encodings if e.overflowing)
        return EncodedPairs(ids, type_ids, np.fromiter((len(i) for i in ids), np.int64, len(ids)), truncated)
