"""Reading `scorer group`'s Parquet inputs, each checked before any work (bad input: exit 2 naming file and column).

Record ids are integers (read as int64) or strings, one kind across every file: scored pairs, `--previous`
groups and `--truth`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from scorer.errors import InputError
from scorer.grouping.edges import encode_ids
from scorer.inputs import Kind, as_ids, check_columns, no_nulls, open_parquet, read_columns

SCORER_KEY = b"scorer"  # JSON object in a scored file's schema metadata; its "threshold" is the default
GROUPS_KEY = b"scorer.group"  # JSON object in a groups file's schema metadata; "next_group_id" is never issued yet


@dataclass(frozen=True)
class ScoredPairs:
    """Every file's id columns (int64 or large_string), scores, and thresholds found in file metadata."""

    left: list[pa.Array]
    right: list[pa.Array]
    scores: np.ndarray
    thresholds: dict[Path, float]


@dataclass(frozen=True)
class Groups:
    """A groups file: `id` -> `group_id` (int64), and the first id not yet issued by the run that wrote it."""

    ids: pa.Array
    group_ids: np.ndarray
    next_group_id: int


def _kind(kind: pa.DataType) -> str | None:
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    return None


def _open(path: Path, columns: dict[str, tuple[Kind | None, str]]) -> tuple[pa.Table, pa.Schema]:
    """Read `columns` (name -> (kind, the flag that named it)) of a Parquet file, checked first."""
    parquet = open_parquet(path)
    check_columns(path, parquet.schema_arrow, columns)
    return read_columns(parquet, path, list(columns)), parquet.schema_arrow


class IdKind:
    """The one id type of a command's files: the first file's, checked against every other file's."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.source = ""

    def read(self, path: Path, table: pa.Table, column: str) -> pa.Array:
        """The column as int64 or large_string, refusing nulls and a kind other than the first file's."""
        values = table.column(column)
        kind = _kind(values.type)
        if kind is None:
            raise InputError(f"{path}: column {column!r} has type {values.type}; ids must be integers or strings")
        if self.kind is None:
            self.kind, self.source = kind, f"{path} column {column!r}"
        elif kind != self.kind:
            raise InputError(f"{path}: column {column!r} holds {kind} ids but {self.source} holds {self.kind} ids")
        no_nulls(path, values, column, "id")
        return as_ids(values, path, column, pa.large_string())


def _metadata(schema: pa.Schema, key: bytes) -> dict:
    try:
        value = json.loads((schema.metadata or {}).get(key, b"{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_scored(paths: list[Path], left_col: str, right_col: str, score_col: str, ids: IdKind) -> ScoredPairs:
    """Read the id and score columns of every scored file."""
    left, right, scores, thresholds = [], [], [], {}
    for path in paths:
        table, schema = _open(
            path,
            {
                left_col: ("id", "--left-id-col"),
                right_col: ("id", "--right-id-col"),
                score_col: ("number", "--score-col"),
            },
        )
        left.append(ids.read(path, table, left_col))
        right.append(ids.read(path, table, right_col))
        score = table.column(score_col)
        no_nulls(path, score, score_col, "score")
        values = score.to_numpy().astype(np.float64)
        outside = ~((values >= 0) & (values <= 1))  # NaN included
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise InputError(
                f"{path}: column {score_col!r}, row {row}: score {values[row]} is not within [0, 1] (grouping "
                "counts unscored pairs as 0, a non-match, so it needs probability-like scores, e.g. sigmoid)"
            )
        scores.append(values)
        threshold = _metadata(schema, SCORER_KEY).get("threshold")
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
                raise InputError(
                    f"{path}: the threshold its metadata records, {threshold!r}, is not a number in (0, 1]"
                )
            thresholds[path] = float(threshold)
    return ScoredPairs(left, right, np.concatenate(scores), thresholds)


def _unique(path: Path, values: pa.Array, column: str) -> None:
    distinct, index = encode_ids(values)
    counts = np.bincount(index)
    if len(counts) and counts.max() > 1:
        duplicate = distinct[int(np.argmax(counts > 1))].as_py()
        raise InputError(f"{path}: column {column!r}: id {duplicate!r} appears more than once; ids must be unique")


def read_groups(path: Path, ids: IdKind) -> Groups:
    """A groups file written by `scorer group` (`--previous`): columns `id` and integer `group_id`."""
    table, schema = _open(path, {"id": ("id", ""), "group_id": (None, "")})
    record_ids = ids.read(path, table, "id")
    group_ids = table.column("group_id")
    if not pa.types.is_integer(group_ids.type):
        raise InputError(f"{path}: column 'group_id' has type {group_ids.type}; expected integer group ids")
    no_nulls(path, group_ids, "group_id", "group id")
    _unique(path, record_ids, "id")
    values = as_ids(group_ids, path, "group_id", pa.large_string()).to_numpy()
    if len(values) and values.min() < 0:
        row = int(np.argmax(values < 0))
        raise InputError(f"{path}: column 'group_id', row {row}: negative group id {values[row]}")
    after_max = int(values.max()) + 1 if len(values) else 0
    issued = _metadata(schema, GROUPS_KEY).get("next_group_id", 0)
    if isinstance(issued, bool) or not isinstance(issued, int) or issued < 0:
        raise InputError(f"{path}: its next_group_id metadata {issued!r} is not a group id; renumber the groups file")
    return Groups(record_ids, values, max(after_max, issued))


def read_truth(path: Path, ids: IdKind) -> tuple[pa.Array, np.ndarray]:
    """A truth file (`--truth`): columns `id` and `group` (integers or strings); returns ids and group labels."""
    table, _ = _open(path, {"id": ("id", ""), "group": ("id", "")})
    record_ids = ids.read(path, table, "id")
    group = table.column("group")
    no_nulls(path, group, "group", "group")
    _unique(path, record_ids, "id")
    return record_ids, encode_ids(group.combine_chunks())[1]
