"""The checks every command applies to a Parquet input before any work, in one place: the file is readable, each
named column is there once and of the kind the command needs, texts are valid UTF-8, ids fit int64, and the first
bad value is named by file, column and row. Each failure is an InputError (exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.errors import InputError

TEXT_TYPES = (pa.string(), pa.large_string())
BINARY_TYPES = (pa.binary(), pa.large_binary())
Kind = Literal["text", "id", "number"]
_EXPECTED = {"text": "string", "id": "string or integer", "number": "a number"}


def open_parquet(path: Path) -> pq.ParquetFile:
    """The file's reader; an InputError when it is not Parquet."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None


def duplicate_names(schema: pa.Schema) -> list[str]:
    return sorted({name for name in schema.names if schema.names.count(name) > 1})


def _matches(kind: Kind, data_type: pa.DataType) -> bool:
    if kind == "text":
        return data_type in TEXT_TYPES
    if kind == "id":
        return data_type in TEXT_TYPES or pa.types.is_integer(data_type)
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def check_columns(path: Path, schema: pa.Schema, columns: Mapping[str, tuple[Kind | None, str]]) -> None:
    """Each of `columns` (name -> (kind or None for any, the flag that named it)) is present exactly once and of
    its kind."""
    for column, (kind, flag) in columns.items():
        if column not in schema.names:
            hint = f"; see {flag}" if flag else ""
            raise InputError(f"{path}: column {column!r} not found (columns: {', '.join(schema.names)}{hint})")
        if schema.names.count(column) > 1:
            raise InputError(f"{path}: column name {column!r} appears more than once; rename one")
        data_type = schema.field(column).type
        if kind is not None and not _matches(kind, data_type):
            raise InputError(f"{path}: column {column!r} has type {data_type}, expected {_EXPECTED[kind]}")


def read_columns(parquet: pq.ParquetFile, path: Path, columns: list[str]) -> pa.Table:
    """The named columns (each once); corrupt data is an InputError."""
    try:
        return parquet.read(columns=list(dict.fromkeys(columns)))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: corrupt Parquet data ({exc})") from None


def utf8(array: pa.Array | pa.ChunkedArray, path: Path, column: str, first_row: int = 0) -> pa.Array | pa.ChunkedArray:
    """A string or binary column as strings, every value checked to be valid UTF-8."""
    if array.type in BINARY_TYPES:
        array = array.view(pa.string() if array.type == pa.binary() else pa.large_string())
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        for row, value in enumerate(array.cast(pa.large_binary()).to_pylist()):
            try:
                value is None or value.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{path}: column {column!r}, row {first_row + row}: invalid UTF-8") from None
        raise
    return array


def first_null(values: pa.Array | pa.ChunkedArray) -> int | None:
    """Row of the first null, or None."""
    return pc.index(values.is_null(), True).as_py() if values.null_count else None


def no_nulls(path: Path, values: pa.Array | pa.ChunkedArray, column: str, what: str = "value") -> None:
    if (row := first_null(values)) is not None:
        raise InputError(f"{path}: column {column!r}, row {row}: null {what}")


def as_ids(values: pa.Array | pa.ChunkedArray, path: Path, column: str, text_type: pa.DataType) -> pa.Array:
    """Ids as int64 or `text_type` strings (valid UTF-8), in one chunk; integers past int64 are refused."""
    if pa.types.is_integer(values.type):
        data = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        numbers = data.to_numpy(zero_copy_only=False)
        if (
            pa.types.is_unsigned_integer(values.type)
            and len(numbers)
            and (over := numbers > np.iinfo(np.int64).max).any()
        ):
            row = int(np.argmax(over))
            raise InputError(
                f"{path}: column {column!r}, row {row}: id {numbers[row]} does not fit a 64-bit signed integer"
            )
        return data.cast(pa.int64())
    return utf8(values, path, column).cast(text_type).combine_chunks()
