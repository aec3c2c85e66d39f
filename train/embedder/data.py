"""The embedder's training data: the distinct positive pairs of Parquet pair files, and the products they form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from scorer.candidates.text import product_name
from scorer.inputs import first_null
from train.data import RELEVANT
from train.errors import DataError

Text = Literal["product-name", "raw"]


@dataclass(frozen=True)
class Columns:
    """The columns read from each training file."""

    query: str = "query"
    candidate: str = "candidate"
    label: str = "label"


def read_positive_pairs(
    paths: Sequence[Path], columns: Columns = Columns(), text: Text = "product-name"
) -> list[tuple[str, str]]:
    """The distinct positive pairs (unordered, two different texts) of Parquet pair files, texts cut to their
    product name where `text` says so. A missing column, a null or a non-text value raises `DataError` naming
    file, column and row (from 1)."""
    pairs: dict[tuple[str, str], None] = {}
    for path in paths:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(path, f"not a readable Parquet file ({exc})") from None
        for name in (columns.query, columns.candidate, columns.label):
            if name not in schema.names:
                raise DataError(path, f"no such column (found: {', '.join(schema.names)})", column=name)
        table = pq.read_table(path, columns=[columns.query, columns.candidate, columns.label])
        for name in (columns.query, columns.candidate, columns.label):
            row = first_null(table[name])
            if row is not None:
                raise DataError(path, "null value", column=name, row=row + 1)
        for name in (columns.query, columns.candidate):
            if not pa.types.is_string(table[name].type) and not pa.types.is_large_string(table[name].type):
                raise DataError(path, f"expected text, got {table[name].type}", column=name)
        if not (pa.types.is_integer(table[columns.label].type) or pa.types.is_floating(table[columns.label].type)):
            raise DataError(path, f"expected a number, got {table[columns.label].type}", column=columns.label)
        positive = table.filter(pc.greater_equal(table[columns.label], RELEVANT))
        for query, candidate in zip(
            positive[columns.query].to_pylist(), positive[columns.candidate].to_pylist(), strict=True
        ):
            a, b = (product_name(query), product_name(candidate)) if text == "product-name" else (query, candidate)
            if a.strip() and b.strip() and a != b:
                pairs[(a, b) if a < b else (b, a)] = None
    if not pairs:
        names = ", ".join(str(p) for p in paths)
        raise DataError(
            Path(names), f"no positive pairs (label >= {RELEVANT} with two different texts)", column=columns.label
        )
    if len(set(product_groups(list(pairs)))) < 2:
        names = ", ".join(str(p) for p in paths)
        raise DataError(
            Path(names), "every positive pair is of one product: in-batch negatives need at least two products"
        )
    return list(pairs)


def product_groups(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Each pair's product: the connected component of the texts its pairs join, numbered by first pair."""
    index: dict[str, int] = {}
    edges = np.array([(index.setdefault(a, len(index)), index.setdefault(b, len(index))) for a, b in pairs], np.int64)
    edges = edges.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(index), len(index)))
    component = connected_components(graph, directed=False)[1][edges[:, 0]] if len(edges) else []
    numbers: dict[int, int] = {}
    return [numbers.setdefault(int(c), len(numbers)) for c in component]
