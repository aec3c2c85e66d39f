"""Work avoidance: a pair's score is computed once per model variant.

Pairs are keyed by a 16-byte blake2b hash of their two texts. `ScoreIndex` maps keys to float32 scores in
20 bytes a pair (10M pairs: ~200 MB), as sorted runs merged log-structured, so adding and looking up stay
vectorised. `load_previous` streams earlier outputs of the same artifact variant (`--reuse`) into one, and
refuses an output of another model, variant or tokenizer (the identity recorded in its Parquet metadata).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.record_text import join, spec_columns

KEY_DTYPE = np.dtype("S16")
SCORER_KEY = b"scorer"  # JSON object in an output's schema metadata: what produced its scores
IDENTITY = ("model_sha256", "precision", "tokenizer_sha256", "max_length", "activation")


def pair_keys(queries: Iterable[str], candidates: Iterable[str]) -> np.ndarray:
    """One 16-byte key per (query, candidate): the hash of both texts, the query's length first (unambiguous).

    >>> keys = pair_keys(["ab", "a"], ["c", "bc"])
    >>> keys.dtype.itemsize, bool(keys[0] == keys[1])
    (16, False)
    """
    keys = []
    for query, candidate in zip(queries, candidates, strict=True):
        first = query.encode()
        digest = hashlib.blake2b(len(first).to_bytes(8, "little"), digest_size=16)
        digest.update(first)
        digest.update(candidate.encode())
        keys.append(digest.digest())
    return np.array(keys, dtype=KEY_DTYPE)


DIGEST_KEY = b"scorer.digest"  # a part file's digest of its (pair key, score) rows, summed into the output's
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def content_digest(keys: np.ndarray, scores: np.ndarray) -> int:
    """An order-free digest of (pair key, float32 score) rows: the sum, modulo 2**64, of a mixed 64-bit hash of
    each row (splitmix64's finaliser). Windows' digests add up to the output's, in any order; a changed score
    or pair changes it (barring a 2**-64 chance).

    >>> keys = pair_keys(["a", "b"], ["x", "y"])
    >>> scores = np.array([0.25, 0.75], np.float32)
    >>> content_digest(keys, scores) == (content_digest(keys[:1], scores[:1]) + content_digest(keys[1:], scores[1:])) % 2**64
    True
    >>> content_digest(keys, scores) == content_digest(keys, np.array([0.25, 0.7500001], np.float32))
    False
    """
    halves = np.ascontiguousarray(keys, dtype=KEY_DTYPE).view(np.uint64).reshape(-1, 2)
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = halves[:, 0] ^ (halves[:, 1] * _MIX[0]) ^ (bits * _MIX[1])
        x = (x ^ (x >> np.uint64(30))) * _MIX[1]
        x = (x ^ (x >> np.uint64(27))) * _MIX[2]
        x ^= x >> np.uint64(31)
    return int(x.sum(dtype=np.uint64))


def with_digest(schema: pa.Schema, rows: int, digest: int) -> pa.Schema:
    """The output schema with its content digest added to the `scorer` record, for `--reuse` to verify."""
    record = json.loads(schema.metadata[SCORER_KEY])
    record["content"] = {"rows": rows, "digest": f"{digest:016x}"}
    return schema.with_metadata({**schema.metadata, SCORER_KEY: json.dumps(record, sort_keys=True).encode()})


class ScoreIndex:
    """Keys -> float32 scores; the first score added for a key is kept.

    >>> index = ScoreIndex()
    >>> index.add(pair_keys(["a", "b"], ["x", "y"]), np.array([0.25, 0.75], np.float32))
    >>> found, scores = index.get(pair_keys(["b", "c"], ["y", "z"]))
    >>> found.tolist(), float(scores[0]), len(index)
    ([True, False], 0.75, 2)
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)

    def add(self, keys: np.ndarray, scores: np.ndarray) -> None:
        if not len(keys):
            return
        found, _ = self.get(keys)
        keys, scores = keys[~found], scores[~found]
        if not len(keys):
            return
        unique, first = np.unique(keys, return_index=True)
        self._runs.append((unique, scores[first].astype(np.float32)))
        # Merge while the newest run is at least half its predecessor: O(log n) runs, O(n log n) in all.
        while len(self._runs) > 1 and 2 * len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            (older_keys, older_scores), (newer_keys, newer_scores) = self._runs[-2:]
            keys = np.concatenate([older_keys, newer_keys])
            order = np.argsort(keys, kind="stable")
            self._runs[-2:] = [(keys[order], np.concatenate([older_scores, newer_scores])[order])]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, scores) for `keys`; scores where not found are 0."""
        found = np.zeros(len(keys), dtype=bool)
        scores = np.zeros(len(keys), dtype=np.float32)
        for run_keys, run_scores in self._runs:
            at = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
            hit = ~found & (run_keys[at] == keys)
            scores[hit] = run_scores[at[hit]]
            found |= hit
        return found, scores


def output_metadata(identity: dict[str, Any], columns: dict[str, str], threshold: float | None) -> dict[bytes, bytes]:
    """The Parquet schema metadata of a `scorer run` output: what scored it, its columns, its threshold."""
    record = {**identity, "columns": columns, "threshold": threshold}
    return {SCORER_KEY: json.dumps(record, sort_keys=True).encode()}


def _strings(column: pa.Array) -> list[str]:
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.large_string())
    return column.to_pylist()


def _side(batch: pa.RecordBatch, columns: tuple[str, ...]) -> pa.Array:
    """One side's texts: its column, or its columns joined as `scorer.record_text` joins them."""
    if len(columns) == 1:
        return batch.column(columns[0])
    return pa.array(join([_strings(batch.column(column)) for column in columns]), pa.large_string())


def _recorded(path: Path, schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(SCORER_KEY)
    try:
        record = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("columns"), dict):
        raise InputError(f"--reuse {path}: not an output of `scorer run` (no '{SCORER_KEY.decode()}' metadata)")
    return record


RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # what each activation can output (identity: any finite)


def _file_scores(
    parquet: pq.ParquetFile, path: Path, record: dict[str, Any], batch_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, float32 scores) of every scored pair of an earlier output."""
    columns = record["columns"]
    listwise = "documents" in columns
    names = parquet.schema_arrow.names
    sides = [spec_columns(columns[side], names) for side in ("query", "documents" if listwise else "candidate")]
    score_type = parquet.schema_arrow.field(columns["score"]).type
    item_type = score_type.value_type if listwise and pa.types.is_list(score_type) else score_type
    if not pa.types.is_floating(item_type):
        raise InputError(f"--reuse {path}: column {columns['score']!r} has type {score_type}, not scores")
    keys, scores = [], []
    for batch in parquet.iter_batches(
        batch_size=batch_rows, columns=list(dict.fromkeys([*sides[0], *sides[1], columns["score"]]))
    ):
        query, candidate = (_side(batch, side) for side in sides)
        score = batch.column(columns["score"])
        if listwise:  # one pair a document, its query repeated
            query = query.take(pc.list_parent_indices(candidate))
            candidate, score = pc.list_flatten(candidate), pc.list_flatten(score)
        valid = [column.is_valid().to_numpy(zero_copy_only=False) for column in (query, candidate, score)]
        rows = pa.array(np.flatnonzero(np.logical_and.reduce(valid)))
        keys.append(pair_keys(*(_strings(column.take(rows)) for column in (query, candidate))))
        scores.append(score.take(rows).to_numpy(zero_copy_only=False).astype(np.float32))
    return np.concatenate(keys or [np.empty(0, KEY_DTYPE)]), np.concatenate(scores or [np.empty(0, np.float32)])


def _check_scores(path: Path, record: dict[str, Any], keys: np.ndarray, scores: np.ndarray) -> None:
    """Reused scores must be what the run wrote: finite, in the activation's range, and matching the content
    digest it recorded (an edited or corrupted file is refused)."""
    low, high = RANGES.get(record.get("activation", ""), (-np.inf, np.inf))
    bad = ~np.isfinite(scores) | (scores < low) | (scores > high)
    if bad.any():
        raise InputError(
            f"--reuse {path}: score {scores[np.argmax(bad)]} is not a {record.get('activation')} score; "
            "this file cannot be reused"
        )
    content = record.get("content", {})
    if content.get("rows") != len(keys) or content.get("digest") != f"{content_digest(keys, scores):016x}":
        raise InputError(
            f"--reuse {path}: its scores do not match the content digest `scorer run` recorded when it wrote the "
            "file (edited or corrupted); leave it out of --reuse to rescore those pairs"
        )


def recorded_precision(paths: list[Path]) -> str | None:
    """The variant every one of these earlier outputs was scored with, if they agree on one (auto prefers it)."""
    found = set()
    for path in paths:
        try:
            found.add(_recorded(path, pq.read_schema(path)).get("precision"))
        except (InputError, pa.ArrowInvalid, OSError):
            return None  # load_previous reports what is wrong with it
    return found.pop() if len(found) == 1 else None


def load_previous(
    paths: list[Path], identity: dict[str, Any], batch_rows: int = 65536, other_variants: str = "refuse"
) -> tuple[ScoreIndex, list[str]]:
    """Stream earlier outputs into a ScoreIndex, after checking each was scored by this very variant and that
    its scores are the ones written (`_check_scores`). An output without a content digest (from an older
    scorer), or (with `other_variants="rescore"`, as auto asks) of another variant, is not reused: its pairs are
    scored again, and the returned warnings say so; `"refuse"` makes another variant an InputError."""
    index, warnings = ScoreIndex(), []
    for path in paths:
        try:
            with pq.ParquetFile(path) as parquet:
                record = _recorded(path, parquet.schema_arrow)
                differs = [name for name in IDENTITY if record.get(name) != identity[name]]
                if differs and other_variants == "rescore":
                    warnings.append(
                        f"--reuse {path}: scored by another variant ({record.get('precision')}, not "
                        f"{identity['precision']}) or model; its pairs are scored again"
                    )
                    continue
                if differs:
                    raise InputError(
                        f"--reuse {path}: scored by another model or variant ({', '.join(differs)} differ: "
                        f"{record.get(differs[0])!r} there, {identity[differs[0]]!r} here); its scores cannot be reused"
                    )
                if "content" not in record:
                    warnings.append(
                        f"--reuse {path}: no content digest (written by an older scorer); its pairs are scored again"
                    )
                    continue
                keys, scores = _file_scores(parquet, path, record, batch_rows)
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError(f"--reuse {path}: not a readable scored output ({exc})") from None
        _check_scores(path, record, keys, scores)
        index.add(keys, scores)
    return index, warnings
