"""Exact keys: records that share an identifier-like code (model number, GTIN, MPN) become candidates.

A key shared by more than `MAX_BLOCK` records is purged (a code that common is a family or a format,
not an identifier). Each record keeps at most k partners, taken from its smallest blocks first; blocks are
expanded a bounded number of pairs at a time, so memory stays flat however many codes records share. Keys only
propose pairs: the cross-encoder decides.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from scorer.candidates.pairs import block_pairs, top_per_query

MAX_BLOCK = 100
PAIRS_PER_CHUNK = 1 << 22  # pairs of blocks expanded at once (~100 MB of index arrays)


def key_pairs(key_lists: Iterable[list[str]], k: int, split: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Directed (query, candidate) record indices of records sharing a key. With `split`, records
    below it (the left catalogue) pair only with records at or above it (the right one)."""
    ids: dict[str, int] = {}
    records, codes = [], []
    for record, found in enumerate(key_lists):
        for key in found:
            records.append(record)
            codes.append(ids.setdefault(key, len(ids)))
    record_arr, code_arr = np.array(records, dtype=np.int64), np.array(codes, dtype=np.int64)
    sizes = np.bincount(code_arr, minlength=len(ids))
    kept = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    for chunk in _chunks(sizes):
        inside = np.isin(code_arr, chunk)
        query, candidate, size = block_pairs(code_arr[inside], record_arr[inside])
        keep = query != candidate
        if split is not None:
            keep &= (query < split) != (candidate < split)
        merged = [np.concatenate([old, new[keep]]) for old, new in zip(kept, (query, candidate, size), strict=True)]
        top = top_per_query(merged[0], merged[1], -merged[2].astype(np.float64), k)
        kept = (merged[0][top], merged[1][top], merged[2][top])
    return kept[0], kept[1]


def _chunks(sizes: np.ndarray) -> list[np.ndarray]:
    """The codes of blocks of 2 to `MAX_BLOCK` records, smallest first, in groups whose pairs (the sum of squared
    sizes) stay within `PAIRS_PER_CHUNK`: memory stays bounded whatever the codes' overlap."""
    codes = np.flatnonzero((sizes >= 2) & (sizes <= MAX_BLOCK))
    codes = codes[np.argsort(sizes[codes], kind="stable")]
    cost = np.cumsum(sizes[codes].astype(np.int64) ** 2)
    cuts = np.searchsorted(cost, np.arange(PAIRS_PER_CHUNK, int(cost[-1]) if len(cost) else 0, PAIRS_PER_CHUNK))
    return [chunk for chunk in np.split(codes, cuts) if len(chunk)]
