"""Atomic, resumable output.

While a run is in progress nothing exists at the output path. Scored windows are committed as part
files (write to a temporary name, fsync, rename) in a staging directory beside the output, with a
`state.json` that fingerprints the run: every input's sha256, the artifact variant, the settings.
Each part records in its Parquet metadata the run it belongs to and the window it holds (file, index,
first row, rows), so a resumed run keeps a part only when it proves it belongs to this exact input and
these settings; anything else (a stray or truncated part, progress without a readable `state.json`) is
rescored or refused, never assembled. At the end the parts of exactly the windows read are
concatenated, in input order, into a temporary file that is renamed onto the output.
A lock (`fcntl.flock`, released by the kernel when its process dies) refuses a second concurrent run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from scorer.errors import InputError, WriteError
from scorer.paths import atomic_write, write_text_atomic
from scorer.reuse import DIGEST_KEY, with_digest
from scorer.windows import WindowKey

STATE_NAME = "state.json"
FAILED_NAME = "stopped-on-bad-input.json"
PART_KEY = b"scorer.part"
_RESUME_HINT = "; progress so far is kept, rerun to resume"


def staging_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.partial"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputLock:
    """An exclusive lock on an output path, held for the life of the command that writes it (every command's
    output: a second writer of the same path is refused, exit 2); a context manager."""

    def __init__(self, output: Path) -> None:
        self.path = output.parent / f".{output.name}.lock"
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_file()):
            raise InputError(f"{self.path} (the lock of {output}) is not a regular file; remove it")
        created = not self.path.exists()
        try:
            self._handle = self.path.open("a+")
        except OSError as exc:
            raise WriteError.from_os_error(self.path, exc) from None
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            owner = self._handle.read().strip() or "another process"
            self._handle.close()
            raise InputError(f"{output} is being written by another run ({owner}); wait for it to finish") from None
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(f"pid {os.getpid()}")
            self._handle.flush()
        except OSError as exc:
            self.release() if created else self._handle.close()
            raise WriteError.from_os_error(self.path, exc) from None

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            f"{path.parent} holds progress without its {STATE_NAME}, so it cannot be proven to belong to this run; "
            "rerun with --restart to discard it"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is unreadable ({exc}); rerun with --restart to discard the saved progress") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} is not a run state; rerun with --restart to discard the saved progress")
    return state


class StagedOutput:
    """Part files of a run in progress, and the final atomic assembly."""

    def __init__(self, output: Path, fingerprint: dict[str, Any], restart: bool = False) -> None:
        self.output = output
        self.directory = staging_dir(output)
        self.run_id = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
        self.discarded: str | None = None
        if self.directory.is_symlink() or (self.directory.exists() and not self.directory.is_dir()):
            raise InputError(f"{self.directory} (the progress of {output}) is not a directory; remove it")
        if self.directory.exists() and restart:
            shutil.rmtree(self.directory)
        state_path = self.directory / STATE_NAME
        if self.directory.exists() and not state_path.exists() and not any(self.directory.glob("part-*")):
            shutil.rmtree(self.directory)  # a run stopped before its first commit: nothing to prove or keep
        if self.directory.exists():
            previous = _read_state(state_path)
            changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k]) or ["state"]
            if previous != fingerprint and changed == ["inputs"] and (self.directory / FAILED_NAME).is_file():
                shutil.rmtree(self.directory)  # the last attempt stopped on bad input, now changed: start over
                self.discarded = "the progress of an attempt that stopped on bad input, since changed"
        if self.directory.exists():
            if previous != fingerprint:
                raise InputError(
                    f"{self.directory} holds progress of a different run (changed: {', '.join(changed)}); "
                    "rerun with --restart to discard it"
                )
            return
        try:
            self.directory.mkdir()
            tmp = self.directory / f"{STATE_NAME}.tmp"
            tmp.write_text(json.dumps(fingerprint, indent=2))
            os.replace(tmp, state_path)
        except OSError as exc:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise WriteError.from_os_error(self.directory, exc) from None

    def stopped_on_bad_input(self, message: str) -> None:
        """Record that this attempt stopped on bad input: once the input is fixed (changed), the next attempt
        starts over without --restart, since no part of this one can belong to it."""
        write_text_atomic(self.directory / FAILED_NAME, json.dumps({"input_error": message}) + "\n")

    def _part(self, key: WindowKey) -> Path:
        return self.directory / f"part-{key.file_index:05d}-{key.index:08d}.parquet"

    def _label(self, key: WindowKey) -> bytes:
        return json.dumps({"run": self.run_id, **asdict(key)}, sort_keys=True).encode()

    def done(self, key: WindowKey) -> bool:
        """Whether a committed part holds exactly this window of this run (a damaged one does not count)."""
        path = self._part(key)
        if not path.is_file():
            return False
        try:
            metadata = pq.read_metadata(path)
        except (pa.ArrowInvalid, OSError):
            return False
        label = (metadata.metadata or {}).get(PART_KEY)
        return label == self._label(key) and metadata.num_rows == key.rows

    def scores(self, key: WindowKey, column: str) -> np.ndarray:
        """The committed scores of a window (float32; NaN where null)."""
        values = pq.read_table(self._part(key), columns=[column]).column(0).combine_chunks()
        if pa.types.is_list(values.type):  # listwise: one score a document
            values = pc.list_flatten(values)
        return values.to_numpy(zero_copy_only=False).astype(np.float32)

    def commit(self, key: WindowKey, table: pa.Table) -> None:
        """Write one scored window durably (temp file, fsync, rename), labelled with its run and window."""
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), PART_KEY: self._label(key)})
        with atomic_write(self._part(key), _RESUME_HINT) as tmp:
            pq.write_table(table, tmp)

    def _content(self, keys: list[WindowKey]) -> tuple[int, int] | None:
        """(rows, digest) of the parts' (pair key, score) rows, from the digest each part records; None when a
        part has none (one committed by an older scorer)."""
        rows, total = 0, 0
        for key in keys:
            recorded = (pq.read_schema(self._part(key)).metadata or {}).get(DIGEST_KEY)
            if recorded is None:
                return None
            count, digest = recorded.decode().split(":")
            rows, total = rows + int(count), (total + int(digest, 16)) % 2**64
        return rows, total

    def finalize(self, schema: pa.Schema, keys: list[WindowKey]) -> None:
        """Concatenate the parts of `keys`, in order, into the output, atomically, with the content digest of
        the scores (`scorer.reuse.with_digest`); then drop the staging directory."""
        if (content := self._content(keys)) is not None:
            schema = with_digest(schema, *content)
        with atomic_write(self.output, _RESUME_HINT) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for key in keys:
                if not self.done(key):
                    raise InputError(f"{self._part(key)} changed while the run was assembling; rerun to rescore it")
                writer.write_table(pq.read_table(self._part(key), schema=schema))
        _fsync_dir(self.output.parent)
        shutil.rmtree(self.directory)
