"""Write candidate pairs: ids and texts of both records and the generators that proposed the pair.

The file is written to a temporary name beside the output and renamed onto it when complete, so an
error never leaves a partial file at the output path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scorer.candidates.catalogue import Catalogue
from scorer.candidates.pairs import GENERATORS
from scorer.paths import atomic_write

CHUNK_ROWS = 1_000_000


def schema(id_type: pa.DataType) -> pa.Schema:
    return pa.schema(
        [
            ("query_id", id_type),
            ("candidate_id", id_type),
            ("query", pa.string()),
            ("candidate", pa.string()),
            ("generators", pa.string()),
        ]
    )


def generator_labels() -> pa.Array:
    """Label of each bit mask: 1 -> "lexical", 3 -> "lexical,keys", ..."""
    return pa.array(
        [
            ",".join(name for bit, name in enumerate(GENERATORS) if mask & (1 << bit))
            for mask in range(1 << len(GENERATORS))
        ]
    )


def write_pairs(output: Path, catalogue: Catalogue, pair_keys: np.ndarray, mask: np.ndarray) -> None:
    """Write the pairs (sorted by query then candidate record) to `output`, atomically."""
    n = max(len(catalogue), 1)
    labels = generator_labels()
    with atomic_write(output) as tmp, pq.ParquetWriter(tmp, schema(catalogue.ids.type)) as writer:
        for lo in range(0, len(pair_keys), CHUNK_ROWS):
            keys = pair_keys[lo : lo + CHUNK_ROWS]
            query, candidate = pa.array(keys // n), pa.array(keys % n)
            columns = [
                catalogue.ids.take(query),
                catalogue.ids.take(candidate),
                catalogue.texts.take(query),
                catalogue.texts.take(candidate),
                labels.take(pa.array(mask[lo : lo + CHUNK_ROWS])),
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=writer.schema))
