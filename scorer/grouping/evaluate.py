"""Groups against true groups: pairwise and B-cubed precision, recall and F1.

Pairwise counts record pairs placed together; B-cubed averages, over records, the share of a record's
group that belongs to its true group (precision) and the share of its true group found in its group
(recall). `scores` takes two label arrays over the same records.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scorer.grouping.cluster import Clustering

METRICS = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_precision", "bcubed_recall", "bcubed_f1")


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _sizes(labels: np.ndarray) -> np.ndarray:
    """Size of each record's group (labels: any integers)."""
    inverse = np.unique(labels, return_inverse=True)[1]
    return np.bincount(inverse)[inverse]


def scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Pairwise and B-cubed P / R / F1 (pairwise precision or recall is None when there is no pair to count).

    >>> s = scores(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]))
    >>> round(s["bcubed_precision"], 4), s["bcubed_recall"], round(s["pairwise_precision"], 4), s["pairwise_recall"]
    (0.6667, 0.75, 0.3333, 0.5)
    """
    if not len(predicted):
        return dict.fromkeys(METRICS)
    truth = np.unique(truth, return_inverse=True)[1]
    size_p, size_t = _sizes(predicted), _sizes(truth)
    both = _sizes(np.unique(predicted, return_inverse=True)[1] * (int(truth.max(initial=0)) + 1) + truth)
    bp, br = float(np.mean(both / size_p)), float(np.mean(both / size_t))
    # each record contributes (size - 1) pairs it is part of; every pair is counted twice
    together, predicted_pairs, true_pairs = (float(np.sum(s - 1)) for s in (both, size_p, size_t))
    pp = together / predicted_pairs if predicted_pairs else None
    pr = together / true_pairs if true_pairs else None
    return {
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_f1": _f1(pp, pr) if pp is not None and pr is not None else None,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": _f1(bp, br),
    }


def against_truth(
    ids: pa.Array, clustering: Clustering, truth_ids: pa.Array, truth_groups: np.ndarray
) -> dict[str, Any]:
    """Scores of the groups and of plain connected components over every record of either side: a record
    missing from the truth is its own true group, a true record never scored is its own group."""
    position = pc.index_in(truth_ids, value_set=ids)
    present = position.is_valid().to_numpy(zero_copy_only=False)
    missing = int((~present).sum())
    truth = np.full(len(ids), -1, dtype=np.int64)
    truth[position.filter(present).to_numpy()] = truth_groups[present]
    unlabelled = truth < 0
    truth[unlabelled] = truth_groups.max(initial=-1) + 1 + np.arange(int(unlabelled.sum()))
    truth = np.concatenate([truth, truth_groups[~present]])

    def extended(labels: np.ndarray) -> np.ndarray:
        return np.concatenate([labels, labels.max(initial=-1) + 1 + np.arange(missing)])

    return {
        "records": len(truth),
        "scored_records_without_truth": int(unlabelled.sum()),
        "truth_records_not_scored": missing,
        "groups": scores(extended(clustering.groups), truth),
        "connected_components": scores(extended(clustering.components), truth),
    }
