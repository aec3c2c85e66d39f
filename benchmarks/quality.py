"""Quality of a path's scores against the torch path's: the parity gate's figures (`scorer.metrics.parity`),
and with labels ndcg@10 per group and F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scorer.metrics import classify, ndcg_at_k, parity

THRESHOLD = 0.5


def compare(
    reference: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[Any] | None,
    labels: np.ndarray | None,
    threshold: float = THRESHOLD,
) -> dict[str, Any]:
    """Max abs diff, Spearman, decision flips at `threshold`, and (with labels) ndcg@10 per group and F1."""
    result: dict[str, Any] = parity(reference, scores, threshold)
    if labels is not None and groups is not None:
        ndcg_path = ndcg_at_k(groups, labels, scores, 10)
        ndcg_reference = ndcg_at_k(groups, labels, reference, 10)
        result.update(
            ndcg_at_10=ndcg_path,
            ndcg_at_10_reference=ndcg_reference,
            ndcg_at_10_delta=ndcg_path - ndcg_reference,
            f1_at_threshold=classify(labels, scores, threshold).f1,
        )
    return result
