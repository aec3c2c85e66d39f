"""Pairs the parity gate scores: a user's Parquet file, or a built-in set of varied product-title pairs
(shelf abbreviations, several languages, near-duplicates, unrelated products, pairs longer than 128
tokens), which sorted into token-budget batches also gives batches with heavy padding. The calibrated
int8 recipes fit their statistics on other pairs (`fitting_pairs`), so the gate never grades a recipe on
the pairs it was fitted to."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.reader import open_inputs

BUILTIN_PAIRS = 1000
BUILTIN_SEED = 20261126
FITTING_SEED = 20261127


def load_calibration(
    path: Path | None, query_col: str = "query", candidate_col: str = "candidate", limit: int | None = None
) -> tuple[list[str], list[str]]:
    """(queries, candidates) from `path`, or the built-in set when `path` is None."""
    if path is None:
        from samples.catalogue import sample_pairs

        table = sample_pairs(BUILTIN_PAIRS, seed=BUILTIN_SEED)
    else:
        open_inputs([Path(path)], query_col, candidate_col, score_col="\0")
        table = pq.read_table(path, columns=[query_col, candidate_col])
    if limit is not None:
        table = table.slice(0, limit)
    queries, candidates = table.column(query_col).to_pylist(), table.column(candidate_col).to_pylist()
    for column, values in ((query_col, queries), (candidate_col, candidates)):
        if None in values:
            raise InputError(f"{path}: column {column!r}, row {values.index(None)}: null text")
    if not queries:
        raise InputError(f"{path}: the calibration set is empty")
    return queries, candidates


def fitting_pairs(gate: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """Built-in pairs (another seed) for the calibrated int8 recipes to fit on, less any pair the gate scores."""
    from samples.catalogue import sample_pairs

    table = sample_pairs(BUILTIN_PAIRS, seed=FITTING_SEED)
    graded = set(zip(*gate, strict=True))
    pairs = zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True)
    kept = [pair for pair in pairs if pair not in graded]
    return [q for q, _ in kept], [c for _, c in kept]
