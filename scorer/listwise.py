"""Listwise rows (a query and its documents): the batch form of `CrossEncoder.rank`.

A window's documents are scored as flattened pairs by the very same tokenizer, batches and session as pair
input; here the scores are folded back into one list a row (`scores`, aligned with the documents) with each
document's rank (`ranks`: 1 = best, ties broken by position, the order `CrossEncoder.rank` returns), and,
when the input carries relevance labels, the evaluator's map, mrr@10 and ndcg@10 are accumulated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from scorer.metrics import RELEVANT, reranking_metrics
from scorer.windows import Window

AT_K = 10


def ranks(scores: np.ndarray, scored: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Rank of each scored document within its list (1 = highest score, earlier position first on ties).

    >>> ranks(np.array([0.2, 0.9, 0.9, 0.5], np.float32), np.ones(4, bool), np.array([0, 3, 4])).tolist()
    [3, 1, 2, 1]
    """
    result = np.zeros(len(scores), dtype=np.int32)
    for start, end in itertools.pairwise(offsets):
        members = start + np.flatnonzero(scored[start:end])
        order = members[np.argsort(-scores[members], kind="stable")]
        result[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return result


def list_columns(window: Window, scores: np.ndarray, scored: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(scores, ranks) list columns of a window; null for a null list, null items for unscored documents."""
    assert window.offsets is not None
    offsets = pa.array(window.offsets, pa.int32())
    null_lists = np.zeros(window.batch.num_rows, dtype=bool)
    null_lists[window.null_lists] = True
    mask = pa.array(null_lists) if null_lists.any() else None
    values = pa.array(scores, pa.float32(), mask=~scored)
    ranked = pa.array(ranks(scores, scored, window.offsets), pa.int32(), mask=~scored)
    return (
        pa.ListArray.from_arrays(offsets, values, mask=mask),
        pa.ListArray.from_arrays(offsets, ranked, mask=mask),
    )


@dataclass
class RankingQuality:
    """Mean average precision, MRR@10 and NDCG@10 over lists with a positive and every document scored."""

    lists: int = 0
    skipped: int = 0
    ap: float = 0.0
    rr: float = 0.0
    ndcg: float = 0.0

    def add(self, window: Window, scores: np.ndarray, scored: np.ndarray) -> None:
        assert window.offsets is not None and window.labels is not None
        null_lists = set(window.null_lists)
        for row, (start, end) in enumerate(itertools.pairwise(window.offsets)):
            labels = window.labels[start:end]
            if row in null_lists or not scored[start:end].all() or not (labels >= RELEVANT).any():
                self.skipped += 1
                continue
            ap, rr, ndcg = reranking_metrics(labels, scores[start:end], AT_K)
            self.lists += 1
            self.ap, self.rr, self.ndcg = self.ap + ap, self.rr + rr, self.ndcg + ndcg

    def report(self) -> dict[str, float | int | None]:
        mean = (lambda total: round(total / self.lists, 6)) if self.lists else (lambda total: None)
        return {
            "lists_evaluated": self.lists,
            "lists_skipped": self.skipped,
            "map": mean(self.ap),
            f"mrr@{AT_K}": mean(self.rr),
            f"ndcg@{AT_K}": mean(self.ndcg),
        }
