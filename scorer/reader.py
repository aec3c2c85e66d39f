"""Reading the input: resolve paths, validate every file's schema before work, stream fixed-size windows."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.artifact import sha256_file
from scorer.errors import InputError
from scorer.inputs import BINARY_TYPES, TEXT_TYPES, duplicate_names, utf8
from scorer.record_text import join, spec_columns

ON_NULL = ("error", "null")
DEFAULT_MAX_DOCUMENTS = 1000  # documents a listwise row may hold unless --max-documents says more


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
    """A slice of one input file, in input order: the whole record batch and its (query, candidate) pairs.

    Pair input has one pair a row. Listwise input (a query and a list of documents a row) is flattened:
    row r's documents are pairs `offsets[r]:offsets[r + 1]`; `null_lists` are rows whose list is null, and
    `labels` the flattened relevance labels when a labels column was given.
    """

    file_index: int
    index: int
    first_row: int
    batch: pa.RecordBatch
    queries: list[str | None]
    candidates: list[str | None]
    offsets: np.ndarray | None = None
    null_lists: list[int] = field(default_factory=list)
    labels: np.ndarray | None = None

    @property
    def key(self) -> WindowKey:
        return WindowKey(self.file_index, self.index, self.first_row, self.batch.num_rows)

    @property
    def null_rows(self) -> list[int]:
        """Pairs (flattened, for lists) with a null text."""
        return [i for i, (q, c) in enumerate(zip(self.queries, self.candidates, strict=True)) if q is None or c is None]

    def where(self, pair: int) -> tuple[int, int | None]:
        """(input row, document position or None for pair input) of a pair of this window."""
        if self.offsets is None:
            return self.first_row + pair, None
        row = int(np.searchsorted(self.offsets, pair, side="right")) - 1
        return self.first_row + row, pair - int(self.offsets[row])


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


_HINT = "(use --on-null null to keep such rows with a null score)"


def null_text_message(path: Path, column: str, row: int) -> str:
    return f"{path}: column {column!r}, row {row}: null text {_HINT}"


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
                raise InputError(f"{source.path}: column {column!r}, row {row}: null list or null document {_HINT}")
            raise InputError(null_text_message(source.path, column, row))


def _texts(array: pa.ChunkedArray | pa.Array, path: Path, column: str, first_row: int) -> list[str | None]:
    return utf8(array, path, column, first_row).to_pylist()


def _record_texts(batch: pa.RecordBatch, spec: str, path: Path, first_row: int) -> list[str | None]:
    """A window's texts for a spec: its column, or its columns joined (`scorer.record_text`)."""
    columns = spec_columns(spec, batch.schema.names)
    return join([_texts(batch.column(column), path, column, first_row) for column in columns])


def _flatten(
    window: Window,
    column: pa.Array,
    path: Path,
    name: str,
    labels: pa.Array | None,
    labels_name: str | None,
    limit: int,
) -> Window:
    """Window of listwise rows: documents flattened to pairs, each pair's query repeated."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(lengths) and lengths.max() > limit:
        row = int(np.argmax(lengths > limit))
        raise InputError(
            f"{path}: column {name!r}, row {window.first_row + row}: {lengths[row]:,} documents, over the limit of "
            f"{limit:,} (raise it with --max-documents)"
        )
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    documents = _texts(pc.list_flatten(column), path, name, window.first_row)
    queries = [q for q, n in zip(window.queries, lengths, strict=True) for _ in range(n)]
    flat_labels = None
    if labels is not None:
        labels = labels.combine_chunks() if isinstance(labels, pa.ChunkedArray) else labels
        counts = pc.fill_null(pc.list_value_length(labels), -1).to_numpy(zero_copy_only=False)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(valid & (counts != lengths))
        if len(bad):
            row = int(bad[0])
            raise InputError(
                f"{path}: column {labels_name!r}, row {window.first_row + row}: {max(counts[row], 0)} labels for "
                f"{lengths[row]} documents"
            )
        values = pc.list_flatten(labels.filter(column.is_valid()))
        if values.null_count:
            raise InputError(f"{path}: column {labels_name!r}: null labels")
        flat_labels = values.cast(pa.float64()).to_numpy()
    null_lists = np.flatnonzero(~column.is_valid().to_numpy(zero_copy_only=False)).tolist()
    return Window(
        window.file_index,
        window.index,
        window.first_row,
        window.batch,
        queries,
        documents,
        offsets,
        null_lists,
        flat_labels,
    )


@dataclass(frozen=True)
class WindowSpec:
    """How rows become windows of pairs: columns, window size and the listwise options."""

    query_col: str
    candidate_col: str
    rows: int
    documents_col: str | None = None
    labels_col: str | None = None
    max_documents: int = DEFAULT_MAX_DOCUMENTS


def _window(
    source: InputFile, file_index: int, index: int, first_row: int, batch: pa.RecordBatch, spec: WindowSpec
) -> Window:
    queries = _record_texts(batch, spec.query_col, source.path, first_row)
    if spec.documents_col is None:
        candidates = _record_texts(batch, spec.candidate_col, source.path, first_row)
        return Window(file_index, index, first_row, batch, queries, candidates)
    window = Window(file_index, index, first_row, batch, queries, [])
    labels = batch.column(spec.labels_col) if spec.labels_col else None
    column = batch.column(spec.documents_col)
    return _flatten(window, column, source.path, spec.documents_col, labels, spec.labels_col, spec.max_documents)


def window_keys(inputs: list[InputFile], rows: int) -> list[WindowKey]:
    """Every window of the inputs, in order: input i's window k holds rows [k * rows, (k + 1) * rows)."""
    return [
        WindowKey(file_index, start // rows, start, min(rows, source.num_rows - start))
        for file_index, source in enumerate(inputs)
        for start in range(0, source.num_rows, rows)
    ]


def read_window(source: InputFile, key: WindowKey, spec: WindowSpec) -> Window:
    """One window, read on its own (reading only the row groups it overlaps): the same Window that
    `iter_windows` yields for `key`."""
    groups, start = [], 0
    for group in range(source.metadata.num_row_groups):
        rows = source.metadata.row_group(group).num_rows
        if start < key.first_row + key.rows and start + rows > key.first_row:
            groups.append((group, start))
        start += rows
    try:
        with pq.ParquetFile(source.path) as parquet:
            table = parquet.read_row_groups([group for group, _ in groups])
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{source.path}: corrupt Parquet data near row {key.first_row} ({exc})") from None
    offset = key.first_row - (groups[0][1] if groups else 0)
    batch = table.slice(offset, key.rows).combine_chunks().to_batches()
    batch = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=source.schema)
    return _window(source, key.file_index, key.index, key.first_row, batch, spec)


def iter_windows(inputs: list[InputFile], spec: WindowSpec) -> Iterator[Window]:
    """Stream windows of at most `spec.rows` rows, file by file, in input order, holding one window (and one
    open file) at a time. With `spec.documents_col`, rows are lists (see `Window`)."""
    for file_index, source in enumerate(inputs):
        first_row = 0
        try:
            with pq.ParquetFile(source.path) as parquet:
                for index, batch in enumerate(parquet.iter_batches(batch_size=spec.rows)):
                    yield _window(source, file_index, index, first_row, batch, spec)
                    first_row += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{source.path}: corrupt Parquet data near row {first_row} ({exc})") from None
        if first_row != source.num_rows:
            raise InputError(
                f"{source.path}: changed while being read ({first_row} rows read, {source.num_rows} expected)"
            )


def first_pairs(inputs: list[InputFile], spec: WindowSpec, limit: int) -> tuple[list[str], list[str]]:
    """Up to `limit` pairs without a null text from the start of the inputs (a sample of the run's shapes)."""
    queries: list[str] = []
    candidates: list[str] = []
    windows = iter_windows(inputs, replace(spec, rows=limit))
    try:
        for window in windows:
            for query, candidate in zip(window.queries, window.candidates, strict=True):
                if query is not None and candidate is not None and len(queries) < limit:
                    queries.append(query)
                    candidates.append(candidate)
            if len(queries) >= limit:
                break
    finally:
        windows.close()
    return queries, candidates


def null_message(window: Window, path: Path, query_col: str, candidate_col: str) -> str | None:
    """A message naming the first null text (or null list) of a window, or None when it has none."""
    rows = window.null_rows
    if window.null_lists and (not rows or window.where(rows[0])[0] > window.first_row + window.null_lists[0]):
        return f"{path}: column {candidate_col!r}, row {window.first_row + window.null_lists[0]}: null list " + _HINT
    if not rows:
        return None
    row, position = window.where(rows[0])
    if window.queries[rows[0]] is None:
        return null_text_message(path, query_col, row)
    where = "" if position is None else f", document {position}"
    return f"{path}: column {candidate_col!r}, row {row}{where}: null text " + _HINT
