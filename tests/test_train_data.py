"""Readers for pairs and listwise data: detection, validation, grouping."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_data

from samples.catalogue import listwise_table
from train.data import (
    MAX_LIST,
    as_lists,
    as_pairs,
    complete_lists,
    group_pairs,
    read_file,
    read_files,
)
from train.errors import DataError

GOOD_LISTS = [
    {"query": "dark chocolate 100 g", "documents": ["DRK CHCLT 100G", "green tea"], "scores": [1.0, 0.0]},
    {"query": "green tea", "documents": ["GRN TEA", "thé vert", "pasta"], "scores": [1, 1, 0.25]},
]
GOOD_PAIRS = [
    {"query": "q1", "candidate": "a", "label": 1},
    {"query": "q1", "candidate": "b", "label": 0},
    {"query": "q2", "candidate": "c", "label": 0.5},
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_table(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_table(path, pa.Table.from_pylist(rows))


@pytest.mark.parametrize("write", [write_jsonl, write_parquet])
def test_reads_both_formats_from_both_file_types(tmp_path: Path, write: Any) -> None:
    suffix = ".jsonl" if write is write_jsonl else ".parquet"
    lists = read_file(write(tmp_path / f"lists{suffix}", GOOD_LISTS))
    pairs = read_file(write(tmp_path / f"pairs{suffix}", GOOD_PAIRS))
    assert lists.format == "listwise"
    assert lists.table.column_names == ["query", "documents", "scores"]
    assert lists.table["scores"].to_pylist() == [[1.0, 0.0], [1.0, 1.0, 0.25]]
    assert pairs.format == "pairs"
    assert pairs.table.schema.field("label").type == pa.float32()
    assert pairs.table["label"].to_pylist() == [1.0, 0.0, 0.5]


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    rows = [dict(row, query_text="long text", source=3) for row in GOOD_PAIRS]
    data = read_file(write_parquet(tmp_path / "p.parquet", rows))
    assert data.table.column_names == ["query", "candidate", "label"]


def test_reads_the_seed_listwise_format(tmp_path: Path) -> None:
    table = listwise_table(12, seed=1)  # the seed dataset's schema: float32 lists of scores
    assert table.schema.field("scores").type == pa.list_(pa.float32())
    data = read_file(write_table(tmp_path / "lists.parquet", table))
    assert (data.format, data.table.num_rows) == ("listwise", 12)
    assert data.table["documents"].to_pylist() == table["documents"].to_pylist()


def test_reads_the_shared_listwise_file_as_it_is() -> None:
    path = shared_data("listwise/off-categories-multilingual.parquet")
    data = read_file(path)
    assert (data.format, data.table.num_rows) == ("listwise", pq.ParquetFile(path).metadata.num_rows)


@pytest.mark.parametrize(
    ("rows", "row", "column", "problem"),
    [
        (
            [GOOD_LISTS[0], {"query": "x", "documents": ["a", "b", "c"], "scores": [1.0, 0.0]}],
            2,
            "scores",
            "2 scores for 3 documents",
        ),
        ([GOOD_LISTS[0], GOOD_LISTS[1], {"query": None, "documents": ["a"], "scores": [1.0]}], 3, "query", "null"),
        ([{"query": "x", "documents": ["a", None], "scores": [1.0, 0.0]}], 1, "documents", "null"),
        ([GOOD_LISTS[0], {"query": "x", "documents": ["a", "b"], "scores": [1.0, None]}], 2, "scores", "null"),
        ([GOOD_LISTS[0], {"query": "x", "documents": ["a", "b"], "scores": None}], 2, "scores", "null"),
        ([GOOD_LISTS[0], {"query": "x", "documents": ["a", "b"], "scores": [1.5, 0.0]}], 2, "scores", "outside [0, 1]"),
        ([{"query": "x", "documents": ["a"], "scores": [-0.1]}], 1, "scores", "outside [0, 1]"),
        ([GOOD_LISTS[0], {"query": "x", "documents": [], "scores": []}], 2, "documents", "empty list"),
        ([GOOD_LISTS[0], {"query": "x", "documents": ["a"], "scores": ["high"]}], 2, "scores", "expected a number"),
        ([*GOOD_PAIRS, {"query": "q", "candidate": "c", "label": 2}], 4, "label", "outside [0, 1]"),
        ([*GOOD_PAIRS, {"query": "q", "candidate": None, "label": 1}], 4, "candidate", "null"),
        ([GOOD_PAIRS[0], {"query": "q", "candidate": "c", "label": None}], 2, "label", "null"),
        ([GOOD_PAIRS[0], {"query": 7, "candidate": "c", "label": 1}], 2, "query", "expected text"),
    ],
)
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_malformed_rows_name_file_row_and_column(
    tmp_path: Path, rows: list[dict[str, Any]], row: int, column: str, problem: str, suffix: str
) -> None:
    if suffix == ".parquet":
        try:
            path = write_parquet(tmp_path / "bad.parquet", rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pytest.skip("Arrow cannot store this mix of types in Parquet")
    else:
        path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        read_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: row {row}, column {column!r}: ")
    assert problem in message
    assert (info.value.row, info.value.column, info.value.path) == (row, column, path)
    assert isinstance(info.value, ValueError)


def test_nan_score_is_rejected(tmp_path: Path) -> None:
    rows = [GOOD_LISTS[0], {"query": "x", "documents": ["a"], "scores": [math.nan]}]
    with pytest.raises(DataError, match=r"row 2, column 'scores': nan is outside"):
        read_file(write_parquet(tmp_path / "nan.parquet", rows))


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["query", "documents"], r"missing column\(s\) 'scores': the listwise format needs query, documents"),
        (["query", "candidate"], r"missing column\(s\) 'label': the pairs format needs query, candidate, label"),
        (["text"], r"missing column\(s\) 'query', 'candidate', 'label': .*; found: text$"),
    ],
)
def test_missing_columns(tmp_path: Path, columns: list[str], expected: str) -> None:
    values = {"query": "q", "documents": ["d"], "candidate": "c", "text": "t"}
    path = write_jsonl(tmp_path / "cols.jsonl", [{c: values[c] for c in columns}])
    with pytest.raises(DataError, match=expected):
        read_file(path)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_file(tmp_path / "absent.parquet")
    with pytest.raises(DataError, match=r"unknown file type"):
        read_file(write_jsonl(tmp_path / "data.csv", GOOD_PAIRS))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GOOD_PAIRS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"broken.jsonl: row 2: invalid JSON"):
        read_file(broken)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_file(write_jsonl(tmp_path / "fake.parquet", GOOD_PAIRS))
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"query": pa.array([], pa.string()), "candidate": [], "label": []}), empty)
    with pytest.raises(DataError, match="no rows"):
        read_file(empty)


def test_pairs_grouped_by_query_and_completed_for_lambda(tmp_path: Path) -> None:
    rows = [
        {"query": "q1", "candidate": "a", "label": 1},
        {"query": "q2", "candidate": "b", "label": 0},
        {"query": "q1", "candidate": "c", "label": 0},
        {"query": "q2", "candidate": "d", "label": 0},
        {"query": "q3", "candidate": "e", "label": 1},
    ]
    data = read_file(write_jsonl(tmp_path / "p.jsonl", rows))
    grouped = group_pairs(data.table, seed=0)
    assert grouped["query"].to_pylist() == ["q1", "q2", "q3"]
    assert sorted(grouped["documents"].to_pylist()[0]) == ["a", "c"]
    lists = as_lists([data], seed=0).to_pylist()
    # q2 has no match: the query itself joins as a duplicate; q3 has only a match: a non-match joins
    assert lists[1]["documents"][-1] == "q2" and lists[1]["scores"][-1] == 1.0
    assert lists[2]["documents"][-1] in {"a", "b", "c", "d"} and lists[2]["scores"] == [1.0, 0.0]
    assert all(len(set(row["scores"])) == 2 for row in lists)
    assert as_lists([data], seed=0).equals(as_lists([data], seed=0))


def test_long_groups_are_cut_to_max_list(tmp_path: Path) -> None:
    rows = [{"query": "q", "candidate": f"c{i}", "label": int(i % 5 == 0)} for i in range(40)]
    grouped = group_pairs(read_file(write_parquet(tmp_path / "p.parquet", rows)).table, seed=1)
    assert [len(d) for d in grouped["documents"].to_pylist()] == [MAX_LIST, MAX_LIST, 40 - 2 * MAX_LIST]
    assert sorted(c for d in grouped["documents"].to_pylist() for c in d) == sorted(f"c{i}" for i in range(40))


def test_listwise_rows_with_one_grade_are_completed(tmp_path: Path) -> None:
    rows = [
        {"query": "q", "documents": ["a", "b"], "scores": [1.0, 1.0]},
        {"query": "r", "documents": ["c", "d"], "scores": [0.5, 0.0]},
    ]
    table = complete_lists(read_file(write_jsonl(tmp_path / "l.jsonl", rows)).table, seed=0)
    assert table["scores"].to_pylist() == [[1.0, 1.0, 0.0], [0.5, 0.0]]
    assert table["documents"].to_pylist()[0][-1] in {"c", "d"}


def test_mixed_formats_for_each_loss(tmp_path: Path) -> None:
    files = read_files([write_jsonl(tmp_path / "l.jsonl", GOOD_LISTS), write_jsonl(tmp_path / "p.jsonl", GOOD_PAIRS)])
    pairs = as_pairs(files)
    assert pairs.num_rows == 2 + 3 + 3
    assert pairs.slice(2, 3).to_pydict() == {
        "query": ["green tea"] * 3,
        "candidate": ["GRN TEA", "thé vert", "pasta"],
        "label": [1.0, 1.0, 0.25],
    }
    lists = as_lists(files, seed=0)
    assert lists["query"].to_pylist() == ["dark chocolate 100 g", "green tea", "q1", "q2"]
