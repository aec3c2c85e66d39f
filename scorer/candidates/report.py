"""The candidates report: pair counts per generator, reduction ratio, estimated scoring time, recall."""

from __future__ import annotations

import resource
from typing import Any

from scorer.candidates.blocking import Blocking
from scorer.candidates.catalogue import Catalogue
from scorer.candidates.pairs import GENERATORS

CHUNK = 1 << 22  # pair keys read at once


def scoring_estimate(blocking: Blocking, pairs_per_s: float | None) -> dict[str, Any]:
    """Time `scorer run` would take on these pairs. Without a given rate, the rate is measured here: the
    embedder's tokens/s (a MiniLM-L6 encoder, int8, on this machine's threads) over the mean tokens of a
    pair (both texts in one sequence), i.e. a cross-encoder of the embedder's size."""
    pairs = len(blocking.pair_keys)
    basis = "given (--pairs-per-s)"
    if pairs_per_s is None:
        stats, lengths = blocking.encode_stats, blocking.token_lengths
        if stats is None or lengths is None or not stats.tokens_per_s:
            return {
                "pairs_per_s": None,
                "seconds": None,
                "basis": "unknown: run the embedding generator or give --pairs-per-s",
            }
        n, keys = len(lengths), blocking.pair_keys
        chunks = (keys[lo : lo + CHUNK] for lo in range(0, pairs, CHUNK))  # not 40 bytes of temporaries per pair
        tokens = sum(int(lengths[chunk // n].sum() + lengths[chunk % n].sum()) for chunk in chunks)
        mean_tokens = tokens / pairs - 1 if pairs else float(2 * lengths.mean() - 1)
        pairs_per_s = stats.tokens_per_s / mean_tokens
        basis = f"measured: embedder {stats.tokens_per_s:,.0f} tokens/s / {mean_tokens:.1f} tokens per pair"
    return {"pairs_per_s": round(pairs_per_s, 1), "seconds": round(pairs / pairs_per_s, 1), "basis": basis}


def build_report(
    catalogue: Catalogue,
    blocking: Blocking,
    generators: list[str],
    k: int,
    estimate: dict[str, Any],
    seconds: dict[str, float],
) -> dict[str, Any]:
    """Everything a user checks before scoring, as JSON-ready values."""
    n, pairs = len(catalogue), len(blocking.pair_keys)
    by_generator = {name: int(((blocking.mask & (1 << GENERATORS.index(name))) != 0).sum()) for name in generators}
    only = {name: int((blocking.mask == (1 << GENERATORS.index(name))).sum()) for name in generators}
    possible = catalogue.possible_pairs
    return {
        "mode": "dedup" if catalogue.split is None else "link",
        "records": n,
        "blank_records": blocking.blank_records,
        "left_records": catalogue.split,
        "k": k,
        "generators": generators,
        "pairs": pairs,
        "pairs_by_generator": by_generator,
        "pairs_only_by_generator": only,
        "pairs_per_record": round(pairs / n, 2) if n else 0.0,
        "possible_pairs": possible,
        "reduction_ratio": 1 - pairs / possible if possible else None,
        "estimated_scoring": estimate,
        "seconds": {name: round(value, 2) for name, value in {**blocking.seconds, **seconds}.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def summary(report: dict[str, Any]) -> str:
    """One paragraph for the terminal."""
    counts = ", ".join(f"{name} {count:,}" for name, count in report["pairs_by_generator"].items())
    rr = report["reduction_ratio"]
    lines = [
        f"{report['pairs']:,} candidate pairs from {report['records']:,} records ({counts})"
        + (f"; reduction ratio {rr:.6f}" if rr is not None else ""),
    ]
    estimate = report["estimated_scoring"]
    if estimate["seconds"] is not None:
        lines.append(f"estimated scoring time {estimate['seconds']:,.0f}s at {estimate['pairs_per_s']:,.0f} pairs/s")
    if "blocking_recall" in report and report["blocking_recall"] is not None:
        lines.append(
            f"blocking recall {report['blocking_recall']:.4f} "
            f"({report['true_pairs_found']:,} of {report['true_pairs']:,} true pairs); "
            f"group recall {report['group_recall']:.4f} (true pairs joined by a path of found true pairs)"
        )
    return "\n".join(lines)
