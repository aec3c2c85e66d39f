"""Errors for bad training input; `scorer train` reports each with exit status 2."""

from __future__ import annotations

from pathlib import Path


class TrainInputError(ValueError):
    """Input that training cannot use: data, base model or output path."""


class DataError(TrainInputError):
    """A malformed data file; the message names the file and, where known, column and row.

    Rows count from 1, so for JSON Lines the row is the line number.
    """

    def __init__(
        self,
        path: Path,
        problem: str,
        *,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.path, self.column, self.row = Path(path), column, row
        where = [f"row {row}"] if row is not None else []
        where += [f"column {column!r}"] if column is not None else []
        location = f"{', '.join(where)}: " if where else ""
        super().__init__(f"{path}: {location}{problem}")


class BaseModelError(TrainInputError):
    """The base model cannot be loaded."""


class OutputError(TrainInputError):
    """The output path cannot take a checkpoint."""


def param_hint(exc: TrainInputError, eval_files: tuple[Path, ...] = ()) -> str:
    """The command-line flag a training input error is about (for Click's message)."""
    if isinstance(exc, DataError):
        return "--eval" if exc.path in eval_files else "--train"
    if isinstance(exc, BaseModelError):
        return "--base-model"
    if isinstance(exc, OutputError):
        return "-o/--output"
    return "input"
