"""Padding-aware batching: sort a window by token length, cut batches by a token budget, pad each batch
only to its own longest row, rounded up to a multiple (8 on CUDA, for tensor cores; 1 on CPU, where
rounding only adds work: on short product titles it costs ~7% of the tokens).

The plan depends only on the lengths, so a given window always yields the same batches (which matters
for int8, whose dynamic activation scales make a score depend on its batch).

>>> [b.rows.tolist() for b in plan_batches(np.array([5, 30, 7, 29]), batch_tokens=64)]
[[1, 3], [2, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ROWS = 64  # more rows per batch barely speeds the CPU up, and narrows the length range per batch


@dataclass(frozen=True)
class Batch:
    """Row indices (into the window) of one batch and the length it is padded to."""

    rows: np.ndarray
    padded_length: int

    @property
    def padded_tokens(self) -> int:
        return len(self.rows) * self.padded_length


def round_up(length: int, multiple: int) -> int:
    return -(-int(length) // multiple) * multiple


def plan_batches(lengths: np.ndarray, batch_tokens: int, multiple: int = 1, max_rows: int = MAX_ROWS) -> list[Batch]:
    """Group rows, longest first, into batches of at most `batch_tokens` padded tokens."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[Batch] = []
    start = 0
    while start < len(order):
        padded = round_up(lengths[order[start]], multiple)
        rows = max(1, min(max_rows, batch_tokens // padded))
        batches.append(Batch(order[start : start + rows], padded))
        start += rows
    return batches


def pad_batch(ids: list[np.ndarray], type_ids: list[np.ndarray], batch: Batch, pad_id: int) -> dict[str, np.ndarray]:
    """Right-padded `input_ids`, `attention_mask` and `token_type_ids` (int64) for one batch."""
    shape = (len(batch.rows), batch.padded_length)
    input_ids = np.full(shape, pad_id, dtype=np.int64)
    token_type_ids = np.zeros(shape, dtype=np.int64)
    attention_mask = np.zeros(shape, dtype=np.int64)
    for i, row in enumerate(batch.rows):
        n = len(ids[row])
        input_ids[i, :n] = ids[row]
        token_type_ids[i, :n] = type_ids[row]
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
