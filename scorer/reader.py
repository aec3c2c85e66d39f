"""Reading the input: resolve paths, validate every file's schema before work, stream fixed-size windows."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scorer.artifact import sha256_file
from scorer.errors import InputError

TEXT_TYPES = (pa.string(), pa.large_string())
BINARY_TYPES = (pa.binary(), pa.large_binary())
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


@dataclass(frozen=True)
class WindowKey:
    """Which rows a window holds: window `index` of input `file_index`, rows [first_row, first_row + rows)."""

    file_index: int
    index: int
    first_row: int
    rows: int


@dataclass
class Window:
    """A slice of one input file, in input order: the whole record batch and its two text columns."""

    file_index: int
    index: int
    first_row: int
    batch: pa.RecordBatch
    queries: list[str | None]
    candidates: list[str | None]

    @property
    def key(self) -> WindowKey:
        return WindowKey(self.file_index, self.index, self.first_row, self.batch.num_rows)

    @property
    def null_rows(self) -> list[int]:
        return [i for i, (q, c) in enumerate(zip(self.queries, self.candidates, strict=True)) if q is None or c is None]


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


def _check_text_column(path: Path, schema: pa.Schema, column: str, option: str) -> None:
    if column not in schema.names:
        raise InputError(f"{path}: column {column!r} not found (columns: {', '.join(schema.names)}; see {option})")
    kind = schema.field(column).type
    if kind not in TEXT_TYPES + BINARY_TYPES:
        raise InputError(f"{path}: column {column!r} has type {kind}, expected string")


def _duplicate_names(schema: pa.Schema) -> list[str]:
    return sorted({name for name in schema.names if schema.names.count(name) > 1})


def open_inputs(paths: list[Path], query_col: str, candidate_col: str, score_col: str) -> list[InputFile]:
    """Read every input's footer and check its schema before any work; all files must share one schema."""
    opened: list[InputFile] = []
    for path in paths:
        described = InputFile.describe(path)
        schema, metadata = described.schema, described.metadata
        if duplicates := _duplicate_names(schema):
            raise InputError(f"{path}: column name(s) {', '.join(map(repr, duplicates))} appear more than once")
        _check_text_column(path, schema, query_col, "--query-col")
        _check_text_column(path, schema, candidate_col, "--candidate-col")
        if score_col in schema.names:
            raise InputError(f"{path}: already has a column named {score_col!r} (choose another with --score-col)")
        if opened and not schema.equals(opened[0].schema):
            raise InputError(f"{path}: its schema differs from {opened[0].path}'s; all inputs must share one schema")
        opened.append(InputFile(path, schema, metadata))
    return opened


def _leaf_index(metadata: pq.FileMetaData, column: str) -> int:
    """Index of a top-level column among the Parquet leaf columns (nested columns have several leaves)."""
    for index in range(metadata.num_columns):
        if metadata.schema.column(index).path == column:
            return index
    raise KeyError(column)


def null_text_message(path: Path, column: str, row: int) -> str:
    return f"{path}: column {column!r}, row {row}: null text (use --on-null null to keep such rows with a null score)"


def first_null_row(source: InputFile, column: str) -> int | None:
    """Row of the first null in `column`, reading only row groups whose statistics admit nulls."""
    metadata = source.metadata
    index = _leaf_index(metadata, column)
    offset = 0
    with pq.ParquetFile(source.path) as parquet:
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            stats = metadata.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count or stats.null_count > 0:
                try:
                    values = parquet.read_row_group(group, columns=[column]).column(0)
                except (pa.ArrowInvalid, OSError) as exc:
                    raise InputError(
                        f"{source.path}: corrupt Parquet data in column {column!r}, rows {offset}-{offset + rows - 1} "
                        f"({exc})"
                    ) from None
                if values.null_count:
                    return offset + values.is_null().to_pylist().index(True)
            offset += rows
    return None


def check_no_nulls(inputs: list[InputFile], columns: tuple[str, ...]) -> None:
    """Fail before any work if a text column holds a null, naming file, column and row."""
    for source in inputs:
        found = [(row, column) for column in columns if (row := first_null_row(source, column)) is not None]
        if found:
            row, column = min(found)
            raise InputError(null_text_message(source.path, column, row))


def _texts(array: pa.ChunkedArray | pa.Array, path: Path, column: str, first_row: int) -> list[str | None]:
    if array.type in BINARY_TYPES:
        try:
            array = array.cast(pa.string() if array.type == pa.binary() else pa.large_string())
            array.validate(full=True)
        except pa.ArrowInvalid:
            for i, value in enumerate(array.to_pylist()):
                try:
                    value is None or value.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"{path}: column {column!r}, row {first_row + i}: invalid UTF-8") from None
            raise
    return array.to_pylist()


def iter_windows(inputs: list[InputFile], query_col: str, candidate_col: str, rows: int) -> Iterator[Window]:
    """Stream windows of at most `rows` rows, file by file, in input order, holding one window (and one open
    file) at a time."""
    for file_index, source in enumerate(inputs):
        first_row = 0
        try:
            with pq.ParquetFile(source.path) as parquet:
                for index, batch in enumerate(parquet.iter_batches(batch_size=rows)):
                    queries = _texts(batch.column(query_col), source.path, query_col, first_row)
                    candidates = _texts(batch.column(candidate_col), source.path, candidate_col, first_row)
                    yield Window(file_index, index, first_row, batch, queries, candidates)
                    first_row += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{source.path}: corrupt Parquet data near row {first_row} ({exc})") from None
        if first_row != source.num_rows:
            raise InputError(
                f"{source.path}: changed while being read ({first_row} rows read, {source.num_rows} expected)"
            )


def null_message(window: Window, path: Path, query_col: str, candidate_col: str) -> str | None:
    """A message naming the first null text of a window, or None when it has none."""
    rows = window.null_rows
    if not rows:
        return None
    column = query_col if window.queries[rows[0]] is None else candidate_col
    return null_text_message(path, column, window.first_row + rows[0])
