"""Atomic, resumable output.

While a run is in progress nothing exists at the output path. Scored windows are committed as part
files (write to a temporary name, then rename) in a staging directory beside the output, with a
`state.json` that fingerprints the run (inputs, artifact, settings). A rerun of the same command skips
the committed windows; a rerun with a changed input or artifact is refused unless `--restart`. At the
end the parts are concatenated, in input order, into a temporary file that is renamed onto the output.
A lock (`fcntl.flock`, released by the kernel when its process dies) refuses a second concurrent run.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from click import ClickException

from scorer.errors import InputError

STATE_NAME = "state.json"


def staging_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.partial"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputLock:
    """An exclusive lock on an output path, held for the life of the run."""

    def __init__(self, output: Path) -> None:
        self.path = output.parent / f".{output.name}.lock"
        self._handle = self.path.open("a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            owner = self._handle.read().strip() or "another process"
            self._handle.close()
            raise InputError(f"{output} is being written by another run ({owner}); wait for it to finish") from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"pid {os.getpid()}")
        self._handle.flush()

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self._handle.close()


class StagedOutput:
    """Part files of a run in progress, and the final atomic assembly."""

    def __init__(self, output: Path, fingerprint: dict[str, Any], restart: bool = False) -> None:
        self.output = output
        self.directory = staging_dir(output)
        state_path = self.directory / STATE_NAME
        if self.directory.exists() and restart:
            shutil.rmtree(self.directory)
        if state_path.exists():
            previous = json.loads(state_path.read_text())
            if previous != fingerprint:
                changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k])
                raise InputError(
                    f"{self.directory} holds progress of a different run (changed: {', '.join(changed)}); "
                    "rerun with --restart to discard it"
                )
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f"{STATE_NAME}.tmp"
            tmp.write_text(json.dumps(fingerprint, indent=2))
            os.replace(tmp, state_path)

    def _part(self, file_index: int, window_index: int) -> Path:
        return self.directory / f"part-{file_index:05d}-{window_index:08d}.parquet"

    def done(self, file_index: int, window_index: int) -> bool:
        return self._part(file_index, window_index).exists()

    @property
    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.parquet"))

    def commit(self, file_index: int, window_index: int, table: pa.Table) -> None:
        """Write one scored window durably: temp file, fsync, rename."""
        final = self._part(file_index, window_index)
        tmp = final.with_suffix(".tmp")
        try:
            pq.write_table(table, tmp)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_error(self.output, exc) from None

    def finalize(self, schema: pa.Schema) -> None:
        """Concatenate the parts in order into the output, atomically, then drop the staging directory."""
        tmp = self.output.parent / f".{self.output.name}.tmp"
        try:
            with pq.ParquetWriter(tmp, schema) as writer:
                for part in self.parts:
                    writer.write_table(pq.read_table(part, schema=schema))
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.output)
            _fsync_dir(self.output.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _write_error(self.output, exc) from None
        shutil.rmtree(self.directory)


def _write_error(output: Path, exc: OSError) -> ClickException:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
    return ClickException(f"cannot write {output}: {reason}; progress so far is kept, rerun to resume")


def check_output_path(output: Path, inputs: list[Path], input_dirs: list[Path]) -> None:
    """Refuse outputs that would clobber an input, land inside an input directory, or cannot be written."""
    resolved = output.resolve()
    for path in inputs:
        if path.resolve() == resolved:
            raise InputError(f"output {output} is one of the inputs")
    for directory in input_dirs:
        if resolved.is_relative_to(directory.resolve()):
            raise InputError(f"output {output} is inside input directory {directory}; a rerun would read it as input")
    if not output.parent.is_dir():
        raise InputError(f"output directory {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise InputError(f"output directory {output.parent} is not writable")
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a file path")
