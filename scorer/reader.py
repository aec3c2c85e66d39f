"""Reading the input: resolve paths, validate every file's schema before work, find the first null text.

Streaming the rows in windows is `scorer.windows`."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.artifact import sha256_file
from scorer.errors import InputError
from scorer.inputs import BINARY_TYPES, TEXT_TYPES, duplicate_names
from scorer.record_text import spec_columns

ON_NULL = ("error", "null")


@dataclass
class InputFile:
    """One validated Parquet input: its path, Arrow schema and footer metadata.

    No file handle is kept: a job may read thousands of shards, more than the process may hold open.
    """

    path: Path
    schema: pa.Schema
    metadata: pq.FileMetaData

    @property
    def num_rows(self) -> int:
        return self.metadata.num_rows

    @classmethod
    def describe(cls, path: Path) -> InputFile:
        """Footer and schema of a Parquet file (any schema), for fingerprinting."""
        try:
            with pq.ParquetFile(path) as parquet:
                return cls(path, parquet.schema_arrow, parquet.metadata)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None

    def fingerprint(self) -> dict[str, object]:
        """Identity of the file's content for resuming: size, row count and the sha256 of every byte."""
        return {
            "path": str(self.path.resolve()),
            "size": self.path.stat().st_size,
            "rows": self.num_rows,
            "sha256": sha256_file(self.path),
        }


def resolve_inputs(inputs: tuple[str, ...]) -> list[Path]:
    """Expand files, directories (their *.parquet, sorted) and glob patterns, in the order given."""
    files: list[Path] = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.parquet") if p.is_file())
            if not found:
                raise InputError(f"input directory {spec} holds no *.parquet files")
            files.extend(found)
        elif path.exists():
            if not path.is_file():  # a FIFO or device would block or never end
                raise InputError(f"input {spec} is not a regular file")
            files.append(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec))
            if not matches:
                raise InputError(f"input pattern {spec} matches no files")
            files.extend(matches)
        else:
            raise InputError(f"input file {spec} does not exist")
    return files


def _check_column(path: Path, schema: pa.Schema, column: str, option: str) -> pa.DataType:
    if column not in schema.names:
        raise InputError(f"{path}: column {column!r} not found (columns: {', '.join(schema.names)}; see {option})")
    return schema.field(column).type


def _check_text_column(path: Path, schema: pa.Schema, column: str, option: str) -> None:
    kind = _check_column(path, schema, column, option)
    if kind not in TEXT_TYPES + BINARY_TYPES:
        raise InputError(f"{path}: column {column!r} has type {kind}, expected string")


def is_list(kind: pa.DataType) -> bool:
    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


def _check_list_column(path: Path, schema: pa.Schema, column: str, option: str, values: str) -> None:
    kind = _check_column(path, schema, column, option)
    item = kind.value_type if is_list(kind) else None
    ok = item is not None and (
        item in TEXT_TYPES + BINARY_TYPES
        if values == "string"
        else pa.types.is_integer(item) or pa.types.is_floating(item)
    )
    if not ok:
        raise InputError(f"{path}: column {column!r} has type {kind}, expected a list of {values}s")


def detect_documents(path: Path, candidate_col: str) -> str | None:
    """'documents' when the input has no candidate column but a list-of-strings column of that name."""
    schema = InputFile.describe(path).schema
    if candidate_col in schema.names or "documents" not in schema.names:
        return None
    kind = schema.field("documents").type
    return "documents" if is_list(kind) and kind.value_type in TEXT_TYPES + BINARY_TYPES else None


def open_inputs(
    paths: list[Path],
    query_col: str,
    candidate_col: str,
    score_col: str,
    documents_col: str | None = None,
    labels_col: str | None = None,
    rank_col: str | None = None,
) -> list[InputFile]:
    """Read every input's footer and check its schema before any work; all files must share one schema.

    With `documents_col`, each row is a query and a list of documents (`candidate_col` is not used), and
    `labels_col`, when given, a list of relevance labels aligned with the documents."""
    opened: list[InputFile] = []
    for path in paths:
        described = InputFile.describe(path)
        schema, metadata = described.schema, described.metadata
        if duplicates := duplicate_names(schema):
            raise InputError(f"{path}: column name(s) {', '.join(map(repr, duplicates))} appear more than once")
        for column in spec_columns(query_col, schema.names):
            _check_text_column(path, schema, column, "--query-col")
        if documents_col is None:
            for column in spec_columns(candidate_col, schema.names):
                _check_text_column(path, schema, column, "--candidate-col")
        else:
            _check_list_column(path, schema, documents_col, "--documents-col", "string")
            if labels_col is not None:
                _check_list_column(path, schema, labels_col, "--labels-col", "number")
        for column, option in ((score_col, "--score-col"), (rank_col, "--rank-col")):
            if column is not None and column in schema.names:
                raise InputError(f"{path}: already has a column named {column!r} (choose another with {option})")
        if opened and not schema.equals(opened[0].schema):
            raise InputError(f"{path}: its schema differs from {opened[0].path}'s; all inputs must share one schema")
        opened.append(InputFile(path, schema, metadata))
    return opened


def _leaf_index(metadata: pq.FileMetaData, column: str) -> int:
    """Index of a top-level column's (first) leaf among the Parquet leaf columns (nested columns have several)."""
    for index in range(metadata.num_columns):
        path = metadata.schema.column(index).path
        if path == column or path.startswith(f"{column}."):
            return index
    raise KeyError(column)


def _null_mask(values: pa.ChunkedArray) -> np.ndarray:
    """Rows holding a null: the value itself, or (for lists) the list or any of its items."""
    values = values.combine_chunks()
    nulls = values.is_null().to_numpy(zero_copy_only=False)
    if is_list(values.type):
        items = pc.list_flatten(values)
        parents = pc.list_parent_indices(values).to_numpy()
        nulls = nulls.copy()
        nulls[parents[items.is_null().to_numpy(zero_copy_only=False)]] = True
    return nulls


NULL_HINT = "(use --on-null null to keep such rows with a null score)"


def null_text_message(path: Path, column: str, row: int) -> str:
    return f"{path}: column {column!r}, row {row}: null text {NULL_HINT}"


def first_null_row(source: InputFile, spec: str) -> int | None:
    """Row of the first null text of a spec (`scorer.record_text`: every column of it null), reading only row
    groups whose statistics admit nulls in every column."""
    metadata = source.metadata
    columns = spec_columns(spec, source.schema.names)
    indices = [_leaf_index(metadata, column) for column in columns]
    offset = 0
    with pq.ParquetFile(source.path) as parquet:
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            stats = [metadata.row_group(group).column(index).statistics for index in indices]
            if all(s is None or not s.has_null_count or s.null_count > 0 for s in stats):
                try:
                    values = parquet.read_row_group(group, columns=list(columns))
                except (pa.ArrowInvalid, OSError) as exc:
                    raise InputError(
                        f"{source.path}: corrupt Parquet data in column {spec!r}, rows {offset}-{offset + rows - 1} "
                        f"({exc})"
                    ) from None
                nulls = np.logical_and.reduce([_null_mask(column) for column in values.columns])
                if nulls.any():
                    return offset + int(np.argmax(nulls))
            offset += rows
    return None


def check_no_nulls(inputs: list[InputFile], columns: tuple[str, ...]) -> None:
    """Fail before any work if a text column holds a null, naming file, column and row."""
    for source in inputs:
        found = [(row, column) for column in columns if (row := first_null_row(source, column)) is not None]
        if found:
            row, column = min(found)
            if column in source.schema.names and is_list(source.schema.field(column).type):
                raise InputError(f"{source.path}: column {column!r}, row {row}: null list or null document {NULL_HINT}")
            raise InputError(null_text_message(source.path, column, row))
