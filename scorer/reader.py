"""Reading the input: resolve paths, validate every file's schema before work, stream fixed-size windows."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scorer.errors import InputError

TEXT_TYPES = (pa.string(), pa.large_string())
BINARY_TYPES = (pa.binary(), pa.large_binary())
ON_NULL = ("error", "null")


@dataclass
class InputFile:
    """One validated Parquet input."""

    path: Path
    parquet: pq.ParquetFile

    @property
    def num_rows(self) -> int:
        return self.parquet.metadata.num_rows

    def fingerprint(self) -> dict[str, object]:
        """Cheap identity of the file's content: size, row count and a hash of its footer (the metadata)."""
        size = self.path.stat().st_size
        with self.path.open("rb") as handle:
            handle.seek(max(0, size - 65536))
            footer = hashlib.sha256(handle.read()).hexdigest()
        return {"path": str(self.path.resolve()), "size": size, "rows": self.num_rows, "footer_sha256": footer}


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


def open_inputs(paths: list[Path], query_col: str, candidate_col: str, score_col: str) -> list[InputFile]:
    """Open every input and check its schema before any work; all files must share one schema."""
    opened: list[InputFile] = []
    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        schema = parquet.schema_arrow
        _check_text_column(path, schema, query_col, "--query-col")
        _check_text_column(path, schema, candidate_col, "--candidate-col")
        if score_col in schema.names:
            raise InputError(f"{path}: already has a column named {score_col!r} (choose another with --score-col)")
        if opened and not schema.equals(opened[0].parquet.schema_arrow):
            raise InputError(f"{path}: its schema differs from {opened[0].path}'s; all inputs must share one schema")
        opened.append(InputFile(path, parquet))
    return opened


def first_null_row(source: InputFile, column: str) -> int | None:
    """Row of the first null in `column`, reading only row groups whose statistics admit nulls."""
    metadata = source.parquet.metadata
    index = source.parquet.schema_arrow.get_field_index(column)
    offset = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_null_count or stats.null_count > 0:
            values = source.parquet.read_row_group(group, columns=[column]).column(0)
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
            raise InputError(
                f"{source.path}: column {column!r}, row {row}: null text "
                "(use --on-null null to keep such rows with a null score)"
            )


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
    """Stream windows of at most `rows` rows, file by file, in input order, holding one window at a time."""
    for file_index, source in enumerate(inputs):
        first_row = 0
        try:
            for index, batch in enumerate(source.parquet.iter_batches(batch_size=rows)):
                queries = _texts(batch.column(query_col), source.path, query_col, first_row)
                candidates = _texts(batch.column(candidate_col), source.path, candidate_col, first_row)
                yield Window(file_index, index, first_row, batch, queries, candidates)
                first_row += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{source.path}: corrupt Parquet data near row {first_row} ({exc})") from None


def null_message(window: Window, path: Path, query_col: str, candidate_col: str) -> str | None:
    """A message naming the first null text of a window, or None when it has none."""
    rows = window.null_rows
    if not rows:
        return None
    column = query_col if window.queries[rows[0]] is None else candidate_col
    return (
        f"{path}: column {column!r}, row {window.first_row + rows[0]}: null text "
        "(use --on-null null to keep such rows with a null score)"
    )
