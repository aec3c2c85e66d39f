"""Quality of a CrossEncoder on evaluation data, as the figures of `metrics.json`.

- pairs: precision/recall/F1 at a decision threshold (tuned here for the best F1, or
  given), the same at 0.5, and ndcg@10 with the pairs grouped by query (graded labels
  are the gains);
- listwise: `CrossEncoderRerankingEvaluator` (map, mrr@10, ndcg@10; documents scored at
  least `RELEVANT` are the positives), plus the pair figures of its exploded rows.

Scores are what `CrossEncoder.predict` returns, i.e. after the model's activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sentence_transformers.cross_encoder import CrossEncoder
from sentence_transformers.cross_encoder.evaluation import (
    CrossEncoderRerankingEvaluator,
)

from scorer.metrics import best_threshold, classify, ndcg_at_k
from train.data import RELEVANT, DataFile, as_pairs, explode, read_files

AT_K = 10


def predict(model: CrossEncoder, pairs: pa.Table, batch_size: int = 64) -> np.ndarray:
    """Scores (float32) of a (query, candidate) table, in row order."""
    texts = list(zip(pairs["query"].to_pylist(), pairs["candidate"].to_pylist(), strict=True))
    return np.asarray(
        model.predict(texts, batch_size=batch_size, show_progress_bar=False),
        dtype=np.float32,
    )


def pair_metrics(pairs: pa.Table, scores: np.ndarray, threshold: float | None = None) -> dict[str, float | int]:
    """Figures of scored pairs; `threshold` None tunes it for the best F1."""
    labels = pairs["label"].to_numpy()
    truth = labels >= RELEVANT
    chosen = best_threshold(truth, scores) if threshold is None else classify(truth, scores, threshold)
    at_half = classify(truth, scores, 0.5)
    return {
        "pairs": len(labels),
        "positives": int(truth.sum()),
        "threshold": chosen.threshold,
        "precision": chosen.precision,
        "recall": chosen.recall,
        "f1": chosen.f1,
        "precision@0.5": at_half.precision,
        "recall@0.5": at_half.recall,
        "f1@0.5": at_half.f1,
        f"ndcg@{AT_K}": ndcg_at_k(pairs["query"].to_numpy(), labels, scores, AT_K),
    }


def listwise_metrics(model: CrossEncoder, lists: pa.Table, batch_size: int = 64) -> dict[str, float | int]:
    """The reranking evaluator's map, mrr@10 and ndcg@10 over lists with a positive."""
    samples = []
    for query, documents, scores in zip(*(lists[c].to_pylist() for c in ("query", "documents", "scores")), strict=True):
        positive = [d for d, s in zip(documents, scores, strict=True) if s >= RELEVANT]
        negative = [d for d, s in zip(documents, scores, strict=True) if s < RELEVANT]
        if positive:
            samples.append({"query": query, "positive": positive, "negative": negative})
    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=AT_K, batch_size=batch_size, write_csv=False)
    figures: dict[str, float | int] = {"queries": len(samples)}
    return figures | {k: float(v) for k, v in evaluator(model).items()}


def evaluate(
    model: CrossEncoder,
    files: Sequence[DataFile],
    threshold: float | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Figures per format present in `files`, and the decision threshold.

    The threshold is `threshold` when given, else tuned on the pairs (or, with only
    listwise data, on its exploded rows); 0.5 when there is no data.
    """
    result: dict[str, Any] = {"threshold": threshold, "threshold_source": "given"}
    pairs = [f for f in files if f.format == "pairs"]
    lists = [f for f in files if f.format == "listwise"]
    if lists:
        table = pa.concat_tables(f.table for f in lists)
        exploded = explode(table)
        figures = listwise_metrics(model, table, batch_size)
        figures |= {
            f"pairs_{k}": v for k, v in pair_metrics(exploded, predict(model, exploded, batch_size), threshold).items()
        }
        result["listwise"] = figures
        if threshold is None:
            result["threshold"] = figures["pairs_threshold"]
            result["threshold_source"] = "tuned for F1 on the listwise eval data"
    if pairs:
        table = as_pairs(pairs)
        figures = pair_metrics(table, predict(model, table, batch_size), threshold)
        result["pairs"] = figures
        if threshold is None:
            result["threshold"] = figures["threshold"]
            result["threshold_source"] = "tuned for F1 on the pairs eval data"
    if result["threshold"] is None:
        result["threshold"], result["threshold_source"] = 0.5, "default (no eval data)"
    return result


def evaluate_checkpoint(
    checkpoint: Path | str, files: Sequence[Path | str], threshold: float | None = None
) -> dict[str, Any]:
    """`evaluate` a saved checkpoint on files, e.g. a held-back split at its threshold."""
    return evaluate(CrossEncoder(str(checkpoint)), read_files(files), threshold)
