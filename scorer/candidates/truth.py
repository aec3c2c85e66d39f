"""Blocking quality against known duplicates: a truth file maps ids to true groups.

The truth file is Parquet with columns `id` and `group`; records of one group are duplicates of each
other. Catalogue records absent from it are singletons; ids absent from the catalogue are ignored.
Blocking recall is the share of true duplicate pairs (in link mode: across the two catalogues) that
the candidates hold. Group recall is the share whose two records are joined by a path of true candidate
pairs: what transitive grouping (`scorer group`) can still put together with a perfect scorer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from scorer.candidates.catalogue import Catalogue
from scorer.candidates.pairs import GENERATORS, block_pairs, contains, sorted_unique
from scorer.errors import InputError
from scorer.inputs import check_columns, open_parquet, read_columns

ID, GROUP = "id", "group"


def true_pair_keys(path: Path, catalogue: Catalogue) -> np.ndarray:
    """Sorted unordered pair keys (a * n + b, a < b) of the true duplicate pairs among the catalogue's records."""
    parquet = open_parquet(path)
    check_columns(path, parquet.schema_arrow, {ID: ("id", "--truth"), GROUP: ("id", "--truth")})
    table = read_columns(parquet, path, [ID, GROUP]).drop_null()
    try:
        ids = table.column(ID).cast(catalogue.ids.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(
            f"{path}: column {ID!r} cannot be read as the catalogue's id type {catalogue.ids.type}"
        ) from None
    records = pc.index_in(ids, value_set=catalogue.ids)
    found = records.is_valid()
    if table.num_rows and not pc.any(found).as_py():
        raise InputError(
            f"{path}: none of its {table.num_rows:,} ids is in the catalogue (its ids are "
            f"{table.column(ID).type}, the catalogue's {catalogue.ids.type}): is it the truth of another catalogue?"
        )
    records = records.filter(found).to_numpy().astype(np.int64)
    groups = pc.dictionary_encode(table.column(GROUP).filter(found)).combine_chunks().indices.to_numpy()
    a, b, _ = block_pairs(groups.astype(np.int64), records)
    keep = a < b
    if catalogue.split is not None:
        keep &= (a < catalogue.split) & (b >= catalogue.split)
    return sorted_unique(a[keep] * len(catalogue) + b[keep])


def group_recall(truth: np.ndarray, pair_keys: np.ndarray, n: int) -> float | None:
    """Share of the true pairs whose records are connected by candidate pairs that are true pairs themselves
    (paths stay inside a true group). Keys sorted, a * n + b.

    >>> group_recall(np.array([1, 2, 5]), np.array([1, 5]), n=3)  # (0,1), (1,2) found, so (0,2) is reachable
    1.0
    """
    if not len(truth):
        return None
    edges = truth[contains(pair_keys, truth)]
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges // n, edges % n)), shape=(n, n))
    component = connected_components(graph, directed=False)[1]
    return float((component[truth // n] == component[truth % n]).mean())


def blocking_quality(
    truth: np.ndarray, pair_keys: np.ndarray, mask: np.ndarray, generators: list[str], n: int
) -> dict[str, object]:
    """Recall of the candidates, and of each generator's own pairs, on the true pairs (keys sorted), and the
    group recall of the candidates (n records)."""

    def recall(keys: np.ndarray) -> float | None:
        return float(contains(keys, truth).mean()) if len(truth) else None

    return {
        "true_pairs": len(truth),
        "true_pairs_found": int(contains(pair_keys, truth).sum()),
        "blocking_recall": recall(pair_keys),
        "group_recall": group_recall(truth, pair_keys, n),
        "recall_by_generator": {
            name: recall(pair_keys[(mask & (1 << GENERATORS.index(name))) != 0]) for name in generators
        },
    }
