"""Blocking quality against known duplicates: a truth file maps ids to true groups.

The truth file is Parquet with columns `id` and `group`; records of one group are duplicates of each
other. Catalogue records absent from it are singletons; ids absent from the catalogue are ignored.
Blocking recall is the share of true duplicate pairs (in link mode: across the two catalogues) that
the candidates hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.candidates.catalogue import Catalogue
from scorer.candidates.pairs import GENERATORS, block_pairs, contains, sorted_unique
from scorer.errors import InputError

ID, GROUP = "id", "group"


def true_pair_keys(path: Path, catalogue: Catalogue) -> np.ndarray:
    """Sorted unordered pair keys (a * n + b, a < b) of the true duplicate pairs among the catalogue's records."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    for column in (ID, GROUP):
        if column not in table.column_names:
            raise InputError(f"{path}: truth column {column!r} not found (columns: {', '.join(table.column_names)})")
    table = table.drop_null()
    try:
        ids = table.column(ID).cast(catalogue.ids.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(
            f"{path}: column {ID!r} cannot be read as the catalogue's id type {catalogue.ids.type}"
        ) from None
    records = pc.index_in(ids, value_set=catalogue.ids)
    found = records.is_valid()
    records = records.filter(found).to_numpy().astype(np.int64)
    groups = pc.dictionary_encode(table.column(GROUP).filter(found)).combine_chunks().indices.to_numpy()
    a, b, _ = block_pairs(groups.astype(np.int64), records)
    keep = a < b
    if catalogue.split is not None:
        keep &= (a < catalogue.split) & (b >= catalogue.split)
    return sorted_unique(a[keep] * len(catalogue) + b[keep])


def blocking_quality(
    truth: np.ndarray, pair_keys: np.ndarray, mask: np.ndarray, generators: list[str]
) -> dict[str, object]:
    """Recall of the candidates, and of each generator's own pairs, on the true pairs (keys sorted)."""

    def recall(keys: np.ndarray) -> float | None:
        return float(contains(keys, truth).mean()) if len(truth) else None

    return {
        "true_pairs": len(truth),
        "true_pairs_found": int(contains(pair_keys, truth).sum()),
        "blocking_recall": recall(pair_keys),
        "recall_by_generator": {
            name: recall(pair_keys[(mask & (1 << GENERATORS.index(name))) != 0]) for name in generators
        },
    }
