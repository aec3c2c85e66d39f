"""Read and validate catalogues: an id column and a text per record (one column, or several joined as
`scorer.record_text` joins them), checked before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from scorer.errors import InputError
from scorer.inputs import as_ids, check_columns, no_nulls, open_parquet, read_columns, utf8
from scorer.record_text import join, spec_columns


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


def _read(path: Path, id_col: str, text_col: str) -> tuple[pa.Array, pa.Array]:
    parquet = open_parquet(path)
    text_cols = spec_columns(text_col, parquet.schema_arrow.names)
    check_columns(
        path, parquet.schema_arrow, {id_col: ("id", "--id-col"), **dict.fromkeys(text_cols, ("text", "--text-col"))}
    )
    table = read_columns(parquet, path, [id_col, *text_cols])
    no_nulls(path, table.column(id_col), id_col)
    columns = [utf8(table.column(column), path, column).cast(pa.string()) for column in text_cols]
    texts = (
        columns[0]
        if len(columns) == 1
        else pa.chunked_array([pa.array(join([c.to_pylist() for c in columns]), pa.string())])
    )
    no_nulls(path, texts, text_col)
    return as_ids(table.column(id_col), path, id_col, pa.string()), texts.combine_chunks()


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
