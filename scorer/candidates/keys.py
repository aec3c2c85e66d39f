"""Exact keys: records that share an identifier-like code (model number, GTIN, MPN) become candidates.

A key shared by more than `MAX_BLOCK` records is purged (a code that common is a family or a format,
not an identifier). Each record keeps at most k partners, taken from its smallest blocks first. Keys
only propose pairs: the cross-encoder decides.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from scorer.candidates.pairs import block_pairs, cap_per_query

MAX_BLOCK = 100


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
    keep = (sizes <= MAX_BLOCK)[code_arr]
    query, candidate, size = block_pairs(code_arr[keep], record_arr[keep])
    keep = query != candidate
    if split is not None:
        keep &= (query < split) != (candidate < split)
    return cap_per_query(query[keep], candidate[keep], -size[keep].astype(np.float64), k)
