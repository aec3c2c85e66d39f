"""Score-comparison and ranking metrics, in numpy only (used by export, verify, train, benchmarks).

>>> round(spearman([1, 2, 3, 4], [10, 20, 30, 25]), 3)
0.8
>>> decision_flips([0.4, 0.6, 0.7], [0.6, 0.6, 0.7], threshold=0.5)
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), as scipy.stats.rankdata does."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_vals)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end - 1) / 2.0
    return ranks


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank correlation of two score vectors (1.0 when both are constant and equal)."""
    x, y = _ranks(np.asarray(a, np.float64)), _ranks(np.asarray(b, np.float64))
    if len(x) < 2:
        return 1.0
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 1.0 if np.array_equal(np.asarray(a), np.asarray(b)) else 0.0
    return float(np.clip(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy), -1.0, 1.0))


def decision_flips(reference: ArrayLike, candidate: ArrayLike, threshold: float) -> int:
    """How many pairs land on a different side of `threshold` (score >= threshold = match)."""
    ref = np.asarray(reference) >= threshold
    cand = np.asarray(candidate) >= threshold
    return int(np.count_nonzero(ref != cand))


def parity(reference: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float | int | bool]:
    """How far `scores` are from the torch reference's: the figures of the parity gate and the benchmarks.
    Non-finite scores fail every figure (all decisions count as flipped).

    >>> parity([0.1, 0.6], [0.2, 0.4], 0.5)["flips"]
    1
    """
    reference = np.asarray(reference, np.float64)
    scores = np.asarray(scores, np.float64)
    finite = bool(np.isfinite(scores).all())
    diff = np.abs(reference - scores) if finite else np.array([np.inf])
    flips = decision_flips(reference, scores, threshold) if finite else len(scores)
    return {
        "pairs": len(scores),
        "all_finite": finite,
        "max_abs_diff": float(diff.max(initial=0.0)),
        "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
        "spearman": spearman(reference, scores) if finite else 0.0,
        "flips": flips,
        "flip_rate": flips / max(len(scores), 1),
        "threshold": threshold,
    }


def ndcg_at_k(groups: ArrayLike, relevance: ArrayLike, scores: ArrayLike, k: int = 10) -> float:
    """Mean NDCG@k over groups (e.g. one group per query); groups without relevant items are skipped."""
    groups = np.asarray(groups)
    relevance = np.asarray(relevance, np.float64)
    scores = np.asarray(scores, np.float64)
    values = []
    for group in np.unique(groups):
        mask = groups == group
        rel = relevance[mask]
        if rel.max(initial=0.0) <= 0:
            continue
        discounts = 1.0 / np.log2(np.arange(2, min(k, len(rel)) + 2))
        ranked = rel[np.argsort(-scores[mask], kind="mergesort")][:k]
        ideal = np.sort(rel)[::-1][:k]
        values.append(float((ranked * discounts).sum() / (ideal * discounts).sum()))
    return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class Classification:
    """Precision, recall and F1 of thresholded scores against 0/1 labels."""

    threshold: float
    precision: float
    recall: float
    f1: float


# A label (0/1, or graded) at or above this is a match: one cut-off for training, evaluation and every report.
RELEVANT = 0.5


def classify(labels: ArrayLike, scores: ArrayLike, threshold: float) -> Classification:
    """Precision/recall/F1 when `score >= threshold` predicts a match (labels >= RELEVANT are matches).

    >>> classify([0.5, 0.25, 1.0], [0.9, 0.9, 0.1], 0.5).recall
    0.5
    """
    truth = np.asarray(labels, np.float64) >= RELEVANT
    predicted = np.asarray(scores) >= threshold
    tp = int(np.count_nonzero(truth & predicted))
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Classification(float(threshold), precision, recall, f1)


def best_threshold(labels: ArrayLike, scores: ArrayLike) -> Classification:
    """The threshold (among midpoints of sorted distinct scores) that maximises F1."""
    distinct = np.unique(np.asarray(scores, np.float64))
    candidates = np.concatenate([distinct[:1], (distinct[1:] + distinct[:-1]) / 2]) if len(distinct) else [0.5]
    best = classify(labels, scores, 0.5)
    for threshold in candidates:
        result = classify(labels, scores, float(threshold))
        if result.f1 > best.f1:
            best = result
    return best


def _dcg_tie_averaged(relevant: np.ndarray, scores: np.ndarray, discount_cumsum: np.ndarray) -> float:
    """DCG where tied scores share their positions' discounts (scikit-learn's `ndcg_score`, ties not ignored)."""
    _, inverse, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    ranked = np.zeros(len(counts))
    np.add.at(ranked, inverse.reshape(-1), relevant)
    ranked /= counts
    groups = np.cumsum(counts) - 1
    sums = np.diff(discount_cumsum[groups], prepend=0.0)
    return float((ranked * sums).sum())


def reranking_metrics(labels: ArrayLike, scores: ArrayLike, k: int = 10) -> tuple[float, float, float]:
    """(average precision, reciprocal rank @k, NDCG@k) of one list, as sentence-transformers'
    `CrossEncoderRerankingEvaluator` computes them: positives are labels >= RELEVANT.

    >>> [round(x, 4) for x in reranking_metrics([0, 1, 0, 1], [0.9, 0.8, 0.1, 0.3])]
    [0.5833, 0.5, 0.6934]
    """
    relevant = (np.asarray(labels, np.float64) >= RELEVANT).astype(np.float64)
    scores = np.asarray(scores, np.float64)
    ranking = np.argsort(scores)[::-1]  # the evaluator's own order (ties: numpy's default sort)
    hits = np.flatnonzero(relevant[ranking[:k]])
    reciprocal_rank = 1.0 / (hits[0] + 1) if len(hits) else 0.0
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_relevant = scores[order], relevant[order]
    thresholds = np.append(np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1)
    true_positives = np.cumsum(sorted_relevant)[thresholds]
    precision = true_positives / (thresholds + 1)
    recall = true_positives / true_positives[-1]
    average_precision = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    discount = 1.0 / np.log2(np.arange(len(scores)) + 2)
    discount[k:] = 0.0
    discount_cumsum = np.cumsum(discount)
    ideal = float((np.sort(relevant)[::-1] * discount).sum())
    ndcg = _dcg_tie_averaged(relevant, scores, discount_cumsum) / ideal if ideal else 0.0
    return average_precision, float(reciprocal_rank), ndcg
