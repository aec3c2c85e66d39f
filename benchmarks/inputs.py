"""Benchmark inputs: real pairs files (taken by path, skipped with a message when absent) or the sample
catalogue, written as one Parquet file that every path reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("query", "candidate")


def present(paths: list[Path], log: Callable[[str], None]) -> list[Path]:
    """The files of `paths` that exist; each missing one is reported through `log`."""
    found = []
    for path in paths:
        if path.is_file():
            found.append(path)
        else:
            log(f"skipping {path}: no such file (the real data is not part of the repository)")
    return found


def load_pairs(paths: list[Path], rows: int | None) -> pa.Table:
    """query, candidate, label (when every file has it) and `group` (file index + query, for ndcg@10),
    concatenated in order; the first `rows` rows when given."""
    tables = []
    with_labels = all("label" in pq.read_schema(path).names for path in paths)
    for index, path in enumerate(paths):
        table = pq.read_table(path, columns=[*COLUMNS, "label"] if with_labels else list(COLUMNS))
        if with_labels:
            table = table.set_column(2, "label", table.column("label").cast(pa.float32()))
        groups = pa.array([f"{index}:{query}" for query in table.column("query").to_pylist()])
        tables.append(table.append_column("group", groups))
    table = pa.concat_tables(tables)
    return table.slice(0, rows) if rows is not None else table


def catalogue_pairs(
    rows: int, path: Path, seed: int = 0, distinct: int = 100_000, row_group_rows: int = 10_000
) -> Path:
    """Write `rows` rows of the sample catalogue (`samples.catalogue.sample_pairs`) to `path`: up to
    `distinct` generated pairs, repeated until `rows` are written (each repeat's candidates numbered, so
    every row is a distinct pair that `scorer run` must score), in row groups of `row_group_rows` at every
    size (so that the unit a reader loads does not grow with the file)."""
    from samples.catalogue import sample_pairs

    base = sample_pairs(min(rows, distinct), seed=seed).select(list(COLUMNS))
    with pq.ParquetWriter(path, base.schema) as writer:
        written, repeat = 0, 0
        while written < rows:
            chunk = base.slice(0, rows - written)
            if repeat:
                numbered = pa.array([f"{text} r{repeat}" for text in chunk["candidate"].to_pylist()])
                chunk = chunk.set_column(1, "candidate", numbered)
            writer.write_table(chunk, row_group_size=row_group_rows)
            written += chunk.num_rows
            repeat += 1
    return path
