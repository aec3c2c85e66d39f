"""Errors the CLI reports without a traceback.

Exit status follows Click's convention: 2 for bad input or usage, 1 for other failures.
"""

from __future__ import annotations

import click


class InputError(click.ClickException):
    """Bad input (file, column, row, artifact): exit status 2."""

    exit_code = 2


class GateError(click.ClickException):
    """A variant drifted past its parity gate: exit status 1."""

    exit_code = 1
