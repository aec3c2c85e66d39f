"""Quality of a path's scores against the torch path's: what the benchmark reports per path.

(Recreated after an accidental overwrite; keys as `benchmarks.report` reads them.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from scorer.metrics import classify, decision_flips, ndcg_at_k, spearman

THRESHOLD = 0.5


def compare(
    reference: np.ndarray,
    scores: np.ndarray,
    groups: Sequence[Any] | None,
    labels: np.ndarray | None,
    threshold: float = THRESHOLD,
) -> dict[str, Any]:
    """Max abs diff, Spearman, decision flips at `threshold`, and (with labels) ndcg@10 per group and F1."""
    reference = np.asarray(reference, np.float64)
    scores = np.asarray(scores, np.float64)
    flips = decision_flips(reference, scores, threshold)
    result: dict[str, Any] = {
        "max_abs_diff": float(np.abs(reference - scores).max(initial=0.0)),
        "spearman": spearman(reference, scores),
        "flips": flips,
        "flip_rate": flips / max(len(scores), 1),
        "threshold": threshold,
    }
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
