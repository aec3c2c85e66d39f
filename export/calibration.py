"""Pairs the parity gate scores: a user's Parquet file, or a built-in set of varied product pairs (shelf
abbreviations, several languages, near-duplicates, unrelated products) whose token lengths cover the range up
to `max_length` as real catalogues do: a quarter are whole records (title and description, 100-256 tokens a
pair), as in Abt-Buy's records, where 31% of the pairs pass 128 tokens. Sorted into token-budget batches they
also give batches with heavy padding. A variant that breaks on long inputs thus fails at export. The manifest
records the length mix a gate saw (`length_mix`). The calibrated int8 recipes fit their statistics on other
pairs (`fitting_pairs`), so the gate never grades a recipe on the pairs it was fitted to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.gates import builtin_pairs
from scorer.reader import open_inputs
from scorer.record_text import join, spec_columns
from scorer.tokenize import EncodedPairs

FITTING_SEED = 20261127


def load_calibration(
    path: Path | None, query_col: str = "query", candidate_col: str = "candidate", limit: int | None = None
) -> tuple[list[str], list[str]]:
    """(queries, candidates) from `path`, or the built-in set when `path` is None."""
    if path is None:
        queries, candidates = builtin_pairs()
        return queries[:limit], candidates[:limit]
    (source,) = open_inputs([Path(path)], query_col, candidate_col, score_col="\0")
    sides = [spec_columns(spec, source.schema.names) for spec in (query_col, candidate_col)]
    table = pq.read_table(path, columns=list(dict.fromkeys([*sides[0], *sides[1]])))
    if limit is not None:
        table = table.slice(0, limit)
    queries, candidates = (join([table.column(c).to_pylist() for c in columns]) for columns in sides)
    for spec, values in ((query_col, queries), (candidate_col, candidates)):
        if None in values:
            raise InputError(f"{path}: column {spec!r}, row {values.index(None)}: null text")
    if not queries:
        raise InputError(f"{path}: the calibration set is empty")
    return queries, candidates


def fitting_pairs(gate: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """Built-in pairs (another seed) for the calibrated int8 recipes to fit on, less any pair the gate scores."""
    graded = set(zip(*gate, strict=True))
    pairs = zip(*builtin_pairs(FITTING_SEED), strict=True)
    kept = [pair for pair in pairs if pair not in graded]
    return [q for q, _ in kept], [c for _, c in kept]


def length_mix(encoded: EncodedPairs) -> dict[str, float | int]:
    """The token lengths a gate saw, as the manifest records them.

    >>> mix = length_mix(EncodedPairs([], [], np.array([10, 20, 200, 256]), np.array([0, 0, 0, 1], bool)))
    >>> mix["tokens_p50"], mix["tokens_max"], mix["over_128"], mix["truncated"]
    (110, 256, 0.5, 0.25)
    """
    lengths = encoded.lengths
    return {
        "pairs": len(lengths),
        "tokens_p50": int(np.percentile(lengths, 50)),
        "tokens_p90": int(np.percentile(lengths, 90)),
        "tokens_max": int(lengths.max(initial=0)),
        "over_128": round(float((lengths > 128).mean()), 4),
        "truncated": round(float(encoded.truncated_rows.mean()), 4),
    }
