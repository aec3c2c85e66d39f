"""Read and validate catalogues: an id column and a text per record (one column, or several joined as
`scorer.record_text` joins them), checked before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.record_text import join, spec_columns

ID_TYPES = "string or integer"


@dataclass
class Catalogue:
    """Every record of the inputs, in input order; in link mode the left catalogue's `split` records first."""

    ids: pa.Array
    texts: pa.Array
    split: int | None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def possible_pairs(self) -> int:
        """Pairs a full comparison would score: n(n-1)/2, or left x right in link mode."""
        n = len(self)
        return n * (n - 1) // 2 if self.split is None else self.split * (n - self.split)


def _normal_type(kind: pa.DataType) -> pa.DataType | None:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_integer(kind):
        return pa.int64()
    return None


def _read(path: Path, id_col: str, text_col: str) -> tuple[pa.Array, pa.Array]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    text_cols = spec_columns(text_col, schema.names)
    named = [(id_col, "--id-col"), *((column, "--text-col") for column in text_cols)]
    for column, option in named:
        if column not in schema.names:
            raise InputError(f"{path}: column {column!r} not found (columns: {', '.join(schema.names)}; see {option})")
    if _normal_type(schema.field(id_col).type) is None:
        raise InputError(f"{path}: column {id_col!r} has type {schema.field(id_col).type}, expected {ID_TYPES}")
    for column in text_cols:
        if _normal_type(schema.field(column).type) != pa.string():
            raise InputError(f"{path}: column {column!r} has type {schema.field(column).type}, expected string")
    try:
        table = parquet.read(columns=list(dict.fromkeys([id_col, *text_cols])))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: corrupt Parquet data ({exc})") from None
    ids = table.column(id_col)
    texts = table.column(text_cols[0])
    if len(text_cols) > 1:
        texts = pa.chunked_array([pa.array(join([table.column(c).to_pylist() for c in text_cols]), pa.string())])
    arrays = []
    for column, values in ((id_col, ids), (text_col, texts)):
        if values.null_count:
            row = pc.index(values.is_null(), True).as_py()
            raise InputError(f"{path}: column {column!r}, row {row}: null value")
        arrays.append(values.combine_chunks().cast(_normal_type(values.type)))
    return arrays[0], arrays[1]


def _check_unique(ids: pa.Array, owners: list[tuple[Path, int]], id_col: str) -> None:
    if len(pc.unique(ids)) == len(ids):
        return
    seen: dict[object, tuple[Path, int]] = {}
    first = 0
    for path, rows in owners:
        for row, value in enumerate(ids.slice(first, rows).to_pylist()):
            if value in seen:
                other, other_row = seen[value]
                raise InputError(
                    f"{path}: column {id_col!r}, row {row}: duplicate id {value!r} (also {other}, row {other_row})"
                )
            seen[value] = (path, row)
        first += rows


def read_catalogue(files: list[Path], against: list[Path], id_col: str, text_col: str) -> Catalogue:
    """Read `files` (and, in link mode, `against`): ids non-null, unique over all inputs, one id type;
    texts non-null strings. Raises InputError (exit 2) naming the file and column."""
    ids, texts, owners = [], [], []
    for path in [*files, *against]:
        file_ids, file_texts = _read(path, id_col, text_col)
        if ids and file_ids.type != ids[0].type:
            raise InputError(
                f"{path}: column {id_col!r} has type {file_ids.type}, but {owners[0][0]}'s is {ids[0].type}"
            )
        ids.append(file_ids)
        texts.append(file_texts)
        owners.append((path, len(file_ids)))
    all_ids = pa.concat_arrays(ids)
    _check_unique(all_ids, owners, id_col)
    split = sum(count for _, count in owners[: len(files)]) if against else None
    return Catalogue(all_ids, pa.concat_arrays(texts), split)
