"""Streaming the inputs in fixed-size windows: each a slice of one file with its (query, candidate) texts, the
texts built by `scorer.record_text`'s rule and checked as `scorer.inputs` checks them; listwise rows flattened."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.inputs import utf8
from scorer.reader import NULL_HINT, InputFile, null_text_message
from scorer.record_text import join, spec_columns

DEFAULT_MAX_DOCUMENTS = 1000  # documents a listwise row may hold unless --max-documents says more


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
        return (
            f"{path}: column {candidate_col!r}, row {window.first_row + window.null_lists[0]}: null list " + NULL_HINT
        )
    if not rows:
        return None
    row, position = window.where(rows[0])
    if window.queries[rows[0]] is None:
        return null_text_message(path, query_col, row)
    where = "" if position is None else f", document {position}"
    return f"{path}: column {candidate_col!r}, row {row}{where}: null text " + NULL_HINT
