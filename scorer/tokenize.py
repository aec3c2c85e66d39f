"""Pair tokenization with the artifact's fast tokenizer (the `tokenizers` library, no transformers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from scorer.artifact import MANIFEST_NAME, Manifest, artifact_file, sha256_file
from scorer.errors import InputError


@dataclass
class EncodedPairs:
    """Token ids of a window of pairs, unpadded, and which pairs truncation cut."""

    ids: list[np.ndarray]
    type_ids: list[np.ndarray]
    lengths: np.ndarray
    truncated_rows: np.ndarray  # bool, one per pair

    @property
    def truncated(self) -> int:
        return int(self.truncated_rows.sum())

    def subset(self, rows: np.ndarray) -> EncodedPairs:
        """The pairs at `rows`, in that order."""
        return EncodedPairs(
            [self.ids[i] for i in rows],
            [self.type_ids[i] for i in rows],
            self.lengths[rows],
            self.truncated_rows[rows],
        )


def longest_first(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """Tokens kept of each text by the `tokenizers` library's longest-first truncation of a pair to `budget`.

    >>> longest_first(300, 20, 253), longest_first(300, 200, 253), longest_first(200, 200, 253)
    ((233, 20), (127, 126), (126, 127))
    """
    if n1 + n2 <= budget:
        return n1, n2
    short = min(n1, n2)
    kept_long = short if short > budget else max(short, budget - short)
    kept_short = short
    if kept_short + kept_long > budget:
        kept_short = budget // 2
        kept_long = kept_short + budget % 2
    kept = (kept_long, kept_short) if n1 > n2 else (kept_short, kept_long)
    return min(n1, kept[0]), min(n2, kept[1])


class PairTokenizer:
    """Encodes (query, candidate) pairs as `CrossEncoder` does: longest-first truncation to max_length.

    Memory stays linear in max_length whatever the text length: the Rust tokenizer keeps every overflow
    piece of a truncated pair (the cross product of both texts' pieces: one pair of two 50 KB texts peaked
    at 3.2 GB), so a pair with a long text is tokenized text by text (linear), cut to the tokens that
    longest-first keeps, and re-encoded without any overflow; the result is checked token by token.
    """

    def __init__(self, path: Path, max_length: int) -> None:
        self.max_length = max_length
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length, strategy="longest_first")
        self._single = Tokenizer.from_file(str(path))
        self._single.no_padding()
        self._single.no_truncation()
        self._budget = max(0, max_length - self._tokenizer.num_special_tokens_to_add(True))
        self._short_chars = 4 * max_length  # pairs of texts this short make small overflows: encoded as given

    @classmethod
    def from_artifact(cls, directory: Path, manifest: Manifest) -> PairTokenizer:
        path = artifact_file(directory, manifest.tokenizer, "tokenizer")
        if sha256_file(path) != manifest.tokenizer_sha256:
            raise InputError(
                f"artifact {directory}: {manifest.tokenizer} does not match the tokenizer the model was exported with"
            )
        saved = Tokenizer.from_file(str(path)).truncation
        if saved is not None and saved["max_length"] != manifest.max_length:
            raise InputError(
                f"artifact {directory}: {MANIFEST_NAME} says max_length {manifest.max_length} but the tokenizer was "
                f"exported with {saved['max_length']}; the manifest was edited: re-export"
            )
        return cls(path, manifest.max_length)

    def _cut(self, query: str, candidate: str) -> tuple[tuple[str, str], bool]:
        """The pair cut to the text that longest-first keeps, and whether truncation cut anything.

        Falls back to the pair as given (exact, memory as before) if a tokenizer's tokens were to depend on
        text after the cut, which the check below would catch; none of the WordPiece, BPE or Unigram
        tokenizers tried here does.
        """
        first = self._single.encode(query, add_special_tokens=False)
        second = self._single.encode(candidate, add_special_tokens=False)
        n1, n2 = len(first.ids), len(second.ids)
        if n1 + n2 <= self._budget:
            return (query, candidate), False
        k1, k2 = longest_first(n1, n2, self._budget)
        cut = (query[: first.offsets[k1 - 1][1]] if k1 else "", candidate[: second.offsets[k2 - 1][1]] if k2 else "")
        check = self._tokenizer.encode(*cut)
        kept = [[i for i, s in zip(check.ids, check.sequence_ids, strict=True) if s == side] for side in (0, 1)]
        if kept == [first.ids[:k1], second.ids[:k2]] and not check.overflowing:
            return cut, True
        return (query, candidate), True

    def encode(self, queries: list[str], candidates: list[str]) -> EncodedPairs:
        """Tokenize a window of pairs in parallel (the Rust tokenizer releases the GIL)."""
        pairs = list(zip(queries, candidates, strict=True))
        cut: dict[int, bool] = {}  # pairs with a long text -> whether truncation cut them
        for i, (query, candidate) in enumerate(pairs):
            if len(query) > self._short_chars or len(candidate) > self._short_chars:
                pairs[i], cut[i] = self._cut(query, candidate)
        encodings = self._tokenizer.encode_batch(pairs)
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        type_ids = [np.asarray(e.type_ids, dtype=np.int64) for e in encodings]
        truncated = np.array([cut.get(i, bool(e.overflowing)) for i, e in enumerate(encodings)], dtype=bool)
        return EncodedPairs(ids, type_ids, np.fromiter((len(i) for i in ids), np.int64, len(ids)), truncated)
