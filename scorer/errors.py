"""Errors the CLI reports without a traceback.

Library code raises these plain exceptions; `scorer.main` turns them into Click errors at the command line
(as `scorer train` does with `train.errors`). Exit status follows Click's convention: 2 for bad input or
usage, 1 for other failures.
"""

from __future__ import annotations

import errno
from pathlib import Path


class ScorerError(Exception):
    """A failure to report as one line, with `exit_code`."""

    exit_code = 1


class InputError(ScorerError):
    """Bad input (file, column, row, artifact, output path): exit status 2."""

    exit_code = 2


class GateError(ScorerError):
    """A variant drifted past its parity gate: exit status 1."""


class WriteError(ScorerError):
    """The environment refused a write (disk full, permissions, I/O error): exit status 1."""

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError, hint: str = "") -> WriteError:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        return cls(f"cannot write {path}: {reason}{hint}")
