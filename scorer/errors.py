"""Errors the CLI reports without a traceback.

Exit status follows Click's convention: 2 for bad input or usage, 1 for other failures.
"""

from __future__ import annotations

import errno
from pathlib import Path

import click


class InputError(click.ClickException):
    """Bad input (file, column, row, artifact, output path): exit status 2."""

    exit_code = 2


class GateError(click.ClickException):
    """A variant drifted past its parity gate: exit status 1."""

    exit_code = 1


class WriteError(click.ClickException):
    """The environment refused a write (disk full, permissions, I/O error): exit status 1."""

    exit_code = 1

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError, hint: str = "") -> WriteError:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        return cls(f"cannot write {path}: {reason}{hint}")
