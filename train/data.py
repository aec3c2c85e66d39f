"""Read training and evaluation data (Parquet or JSON Lines) in either format.

The format is detected from the columns:

- listwise: `query` (string), `documents` (list of strings), `scores` (list of numbers
  in [0, 1], one per document);
- pairs: `query`, `candidate` (strings), `label` (0/1, or graded in [0, 1]).

Other columns are ignored. Pair files may name other columns to read as `query` and
`candidate` (`query_col`, `candidate_col`: e.g. the full records `query_text` and
`candidate_text`). Every row is checked; the first bad one raises `DataError` naming the
file, column and row (rows count from 1). Readers return a `DataFile` whose
table is normalised (scores and labels as float32); `as_lists` and `as_pairs` turn any
mix of files into the shape a loss needs.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.metrics import RELEVANT
from scorer.record_text import join, spec_columns
from train.errors import DataError

Format = Literal["pairs", "listwise"]
COLUMNS: dict[Format, tuple[str, str, str]] = {
    "listwise": ("query", "documents", "scores"),
    "pairs": ("query", "candidate", "label"),
}
# LambdaLoss lists longer than this are cut into several lists.
MAX_LIST = 16

LISTWISE_SCHEMA = pa.schema(
    [
        ("query", pa.string()),
        ("documents", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float32())),
    ]
)
PAIRS_SCHEMA = pa.schema([("query", pa.string()), ("candidate", pa.string()), ("label", pa.float32())])


@dataclass(frozen=True)
class DataFile:
    """A validated file: its format and a table with exactly that format's columns."""

    path: Path
    format: Format
    table: pa.Table


def _read_columns(path: Path) -> dict[str, list[Any]]:
    """Every column of a Parquet or JSON Lines file, as Python lists."""
    if not path.is_file():
        raise DataError(path, "no such file")
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path).to_pydict()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(path, f"not a readable Parquet file ({exc})") from None
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    raise DataError(path, "unknown file type (expected .parquet or .jsonl)")


def _read_jsonl(path: Path) -> dict[str, list[Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                raise DataError(path, "empty line", row=line_number)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON ({exc})", row=line_number) from None
            if not isinstance(record, dict):
                raise DataError(path, "not a JSON object", row=line_number)
            records.append(record)
    names = list(dict.fromkeys(key for record in records for key in record))
    return {name: [record.get(name) for record in records] for name in names}


def detect_format(path: Path, columns: Iterable[str]) -> Format:
    """The format whose columns are present; a `DataError` when neither is complete."""
    names = set(columns)
    found = [fmt for fmt, needed in COLUMNS.items() if names.issuperset(needed)]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(path, "has the columns of both formats; keep one set")
    closest: Format = "listwise" if names & {"documents", "scores"} else "pairs"
    other: Format = "pairs" if closest == "listwise" else "listwise"
    missing = ", ".join(repr(c) for c in COLUMNS[closest] if c not in names)
    raise DataError(
        path,
        f"missing column(s) {missing}: the {closest} format needs "
        f"{', '.join(COLUMNS[closest])} (the {other} format "
        f"{', '.join(COLUMNS[other])}); found: {', '.join(sorted(names)) or 'none'}",
    )


def _check_text(path: Path, column: str, row: int, value: Any) -> None:
    if value is None:
        raise DataError(path, "null value", column=column, row=row)
    if not isinstance(value, str):
        raise DataError(path, f"expected text, got {value!r}", column=column, row=row)


def _check_grade(path: Path, column: str, row: int, value: Any) -> float:
    if value is None:
        raise DataError(path, "null value", column=column, row=row)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(path, f"expected a number, got {value!r}", column=column, row=row)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise DataError(path, f"{value!r} is outside [0, 1]", column=column, row=row)
    return float(value)


def _check_list(path: Path, column: str, row: int, value: Any) -> list[Any]:
    if value is None:
        raise DataError(path, "null value", column=column, row=row)
    if not isinstance(value, list):
        raise DataError(path, f"expected a list, got {value!r}", column=column, row=row)
    if not value:
        raise DataError(path, "empty list", column=column, row=row)
    return value


def _validate_listwise(path: Path, data: dict[str, list[Any]]) -> pa.Table:
    for index, (query, documents, scores) in enumerate(
        zip(data["query"], data["documents"], data["scores"], strict=True)
    ):
        row = index + 1
        _check_text(path, "query", row, query)
        for document in _check_list(path, "documents", row, documents):
            _check_text(path, "documents", row, document)
        for score in _check_list(path, "scores", row, scores):
            _check_grade(path, "scores", row, score)
        if len(documents) != len(scores):
            raise DataError(
                path,
                f"{len(scores)} scores for {len(documents)} documents",
                column="scores",
                row=row,
            )
    return pa.table({c: data[c] for c in COLUMNS["listwise"]}, schema=LISTWISE_SCHEMA)


def _side_texts(path: Path, data: dict[str, list[Any]], spec: str) -> list[str | None]:
    """One side's texts: the spec's column, or its columns joined (`scorer.record_text`), each value checked."""
    columns = spec_columns(spec, list(data))
    for column in columns:
        for index, value in enumerate(data[column]):
            if value is not None and not isinstance(value, str):
                raise DataError(path, f"expected text, got {value!r}", column=column, row=index + 1)
    return join([data[column] for column in columns])


def _validate_pairs(path: Path, data: dict[str, list[Any]], query_col: str, candidate_col: str) -> pa.Table:
    queries, candidates = _side_texts(path, data, query_col), _side_texts(path, data, candidate_col)
    for index, (query, candidate, label) in enumerate(zip(queries, candidates, data["label"], strict=True)):
        row = index + 1
        _check_text(path, query_col, row, query)
        _check_text(path, candidate_col, row, candidate)
        _check_grade(path, "label", row, label)
    return pa.table([queries, candidates, data["label"]], schema=PAIRS_SCHEMA)


def _format(path: Path, data: dict[str, list[Any]], query_col: str, candidate_col: str) -> Format:
    """The file's format, where `query_col` and `candidate_col` (text specs) stand for the pair columns."""
    if (query_col, candidate_col) == ("query", "candidate") or {"documents", "scores"} <= set(data):
        return detect_format(path, data)
    named = [column for spec in (query_col, candidate_col) for column in spec_columns(spec, list(data))]
    missing = [name for name in named if name not in data]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {', '.join(map(repr, missing))} named as the pair columns; "
            f"found: {', '.join(sorted(data)) or 'none'}",
        )
    return detect_format(path, {*data, "query", "candidate"})


def read_file(path: Path | str, query_col: str = "query", candidate_col: str = "candidate") -> DataFile:
    """Read and validate one file in either format; pairs from the named columns."""
    path = Path(path)
    data = _read_columns(path)
    fmt = _format(path, data, query_col, candidate_col)
    if not data[COLUMNS[fmt][-1]]:
        raise DataError(path, "no rows")
    if fmt == "listwise":
        return DataFile(path, fmt, _validate_listwise(path, data))
    return DataFile(path, fmt, _validate_pairs(path, data, query_col, candidate_col))


def read_files(
    paths: Iterable[Path | str], query_col: str = "query", candidate_col: str = "candidate"
) -> list[DataFile]:
    """Read and validate several files, which may mix formats."""
    return [read_file(path, query_col, candidate_col) for path in paths]


def explode(table: pa.Table) -> pa.Table:
    """A listwise table as pairs: one (query, document, score) row per document."""
    counts = pc.list_value_length(table["documents"]).to_pylist()
    queries = [q for q, n in zip(table["query"].to_pylist(), counts, strict=True) for _ in range(n)]
    return pa.table(
        {
            "query": pa.array(queries, pa.string()),
            "candidate": pc.list_flatten(table["documents"]),
            "label": pc.list_flatten(table["scores"]),
        },
        schema=PAIRS_SCHEMA,
    )


def group_pairs(table: pa.Table, seed: int) -> pa.Table:
    """Pairs grouped by query into lists (first-appearance order) for LambdaLoss.

    Rows within a group are shuffled with `seed` and cut into lists of at most
    `MAX_LIST` documents.
    """
    rng = random.Random(seed)
    groups: dict[str, list[tuple[str, float]]] = {}
    for query, candidate, label in zip(*(table[c].to_pylist() for c in COLUMNS["pairs"]), strict=True):
        groups.setdefault(query, []).append((candidate, label))
    queries, documents, scores = [], [], []
    for query, items in groups.items():
        rng.shuffle(items)
        for start in range(0, len(items), MAX_LIST):
            chunk = items[start : start + MAX_LIST]
            queries.append(query)
            documents.append([candidate for candidate, _ in chunk])
            scores.append([label for _, label in chunk])
    return pa.table(
        {"query": queries, "documents": documents, "scores": scores},
        schema=LISTWISE_SCHEMA,
    )


def complete_lists(table: pa.Table, seed: int) -> pa.Table:
    """Give every list two different grades, the least LambdaLoss learns from.

    A list whose grades are all equal gets one more document: the query itself as a
    duplicate (grade 1) when it holds no match, else a document of another row as a
    non-match (grade 0).
    """
    rng = random.Random(seed)
    pool = pc.list_flatten(table["documents"]).to_pylist()
    queries = table["query"].to_pylist()
    documents, scores = table["documents"].to_pylist(), table["scores"].to_pylist()
    for query, docs, grades in zip(queries, documents, scores, strict=True):
        if len(set(grades)) > 1:
            continue
        if grades[0] < RELEVANT:
            docs.append(query)
            grades.append(1.0)
            continue
        own = {*docs, query}
        extra = next((d for d in rng.choices(pool, k=100) if d not in own), None)
        if extra is not None:
            docs.append(extra)
            grades.append(0.0)
    return pa.table(
        {"query": queries, "documents": documents, "scores": scores},
        schema=LISTWISE_SCHEMA,
    )


def as_lists(files: Sequence[DataFile], seed: int) -> pa.Table:
    """Every file as listwise rows (pairs grouped by query), completed, for LambdaLoss."""
    return pa.concat_tables(
        complete_lists(f.table if f.format == "listwise" else group_pairs(f.table, seed), seed) for f in files
    )


def as_pairs(files: Sequence[DataFile]) -> pa.Table:
    """Every file as pairs (lists exploded, grades kept as soft labels) for BCE."""
    return pa.concat_tables(f.table if f.format == "pairs" else explode(f.table) for f in files)


def both_orders(pairs: pa.Table) -> pa.Table:
    """The pairs, then each pair again with its two sides swapped (same label)."""
    swapped = pa.table([pairs["candidate"], pairs["query"], pairs["label"]], schema=PAIRS_SCHEMA)
    return pa.concat_tables([pairs, swapped])
