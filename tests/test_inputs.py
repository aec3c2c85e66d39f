"""Input checks before any work (`scorer.inputs`, `scorer.reader`): nulls, duplicate columns, corrupt data, UTF-8,
ids, every bad input class named by file, column and row, and more input files than open files allowed."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer.output import staging_dir


def test_null_pre_check_is_not_fooled_by_a_nested_column(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source, output = tmp_path / "nested.parquet", tmp_path / "out.parquet"
    n = 300
    table = pa.table(
        {
            "meta": pa.array([{"a": i, "b": str(i)} for i in range(n)]),
            "query": [f"dark chocolate {i}" for i in range(n)],
            "candidate": [None if i == 250 else f"cacao bar {i}" for i in range(n)],
        }
    )
    pq.write_table(table, source, row_group_size=100)
    result = invoke("run", source, "-m", bert[1], "-o", output, "--window-rows", "50")
    assert result.exit_code == 2 and "column 'candidate', row 250: null text" in result.output
    assert not staging_dir(output).exists()  # found before the first window was scored


def test_duplicate_column_names_are_named(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"]), pa.array(["c"])], ["query", "candidate", "query"])
    pq.write_table(table, source)
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "'query' appear more than once" in result.output and str(source) in result.output


def test_corrupt_data_met_by_the_null_pre_scan_is_named(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    source = tmp_path / "corrupt.parquet"
    pq.write_table(pq.read_table(pairs_file), source, write_statistics=False, compression="none")
    data = bytearray(source.read_bytes())
    metadata = pq.read_metadata(source)
    chunk = metadata.row_group(0).column(metadata.schema.names.index("candidate"))
    start = chunk.data_page_offset
    data[start : start + 64] = b"\xff" * 64
    source.write_bytes(bytes(data))
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and str(source) in result.output and "corrupt Parquet data" in result.output


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    """One file per input class that used to end in a traceback (scorer.inputs now names what is wrong)."""
    invalid = pa.array([b"sony tv", b"\xff\xfe tv", b"lg"], pa.binary()).view(pa.string())
    duplicated = pa.Table.from_arrays(
        [pa.array(["a", "b"]), pa.array(["sony tv", "sony tv 2"]), pa.array(["x", "y"])],
        names=["sku", "title", "title"],
    )
    scores = pa.array([0.9, 0.8], pa.float32())
    tables = {
        "utf8": pa.table({"sku": ["a", "b", "c"], "title": invalid}),
        "uint64": pa.table({"sku": pa.array([2**63 + 5, 7], pa.uint64()), "title": ["sony tv", "sony tv 2"]}),
        "duplicated": duplicated,
        "scored-uint64": pa.table(
            {
                "query_id": pa.array([2**63 + 1, 2], pa.uint64()),
                "candidate_id": pa.array([2, 3], pa.uint64()),
                "score": scores,
            }
        ),
        "scored-duplicated": pa.Table.from_arrays(
            [pa.array(["a", "b"]), pa.array(["b", "c"]), scores, scores],
            names=["query_id", "candidate_id", "score", "score"],
        ),
        "catalogue": pa.table({"sku": ["a", "b", "c"], "title": ["sony tv", "sony tv 2", "lg"]}),
        "list-truth": pa.table({"id": ["a", "b"], "group": pa.array([[1], [2]])}),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


@pytest.mark.parametrize(
    ("command", "data", "flags", "message"),
    [
        ("candidates", "utf8", [], "utf8.parquet: column 'title', row 1: invalid UTF-8"),
        ("candidates", "uint64", [], "column 'sku', row 0: id 9223372036854775813 does not fit a 64-bit signed"),
        ("candidates", "duplicated", [], "duplicated.parquet: column name 'title' appears more than once"),
        (
            "candidates",
            "catalogue",
            ["--truth", "list-truth"],
            "column 'group' has type list<element: int64>, expected",
        ),
        ("group", "scored-uint64", [], "column 'query_id', row 0: id 9223372036854775809 does not fit"),
        ("group", "scored-duplicated", [], "column name 'score' appears more than once"),
    ],
)
def test_bad_input_classes_exit_2_naming_file_column_and_row(
    command: str, data: str, flags: list[str], message: str, tmp_path: Path
) -> None:
    paths = _bad_inputs(tmp_path)
    common = {"candidates": ["--id-col", "sku", "--text-col", "title", "--generators", "lexical"], "group": []}
    flags = [str(paths[flag]) if flag in paths else flag for flag in flags]
    result = invoke(command, paths[data], *common[command], *flags, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out.parquet").exists()


def test_run_refuses_invalid_utf8_in_a_string_column(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    queries = pa.array([b"sony tv", b"lg \xff phone"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"query": queries, "candidate": ["sony tv 40", "lg phone"]}), path)
    result = invoke("run", path, "-m", bert[1], "-o", tmp_path / "out.parquet", "--precision", "fp32")
    assert result.exit_code == 2 and "pairs.parquet: column 'query', row 1: invalid UTF-8" in result.output
    assert not (tmp_path / "out.parquet").exists()


def test_more_inputs_than_open_files_allowed(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    """1100 shards under a limit of 1024 open files: inputs are opened one at a time."""
    shards = tmp_path / "shards"
    shards.mkdir()
    table = pq.read_table(pairs_file).slice(0, 1)
    for i in range(300):
        pq.write_table(table, shards / f"part-{i:04d}.parquet")
    output = tmp_path / "out.parquet"
    command = [sys.executable, "-m", "scorer", "run", str(shards), "-m", str(bert[1]), "-o", str(output)]

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    done = subprocess.run(command, check=False, capture_output=True, text=True, preexec_fn=limit)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(output).num_rows == 300
