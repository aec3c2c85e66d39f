"""Where a checkpoint may be written: the shared output rules of `scorer.paths`, as a training error."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import click

from scorer.errors import InputError
from scorer.paths import check_dir_target, staged_directory
from train.config import TrainConfig
from train.data import DataFile
from train.errors import OutputError

# A directory holding this file is an earlier checkpoint, which a new one may replace.
MARKER = "metrics.json"

__all__ = ["MARKER", "check_output", "output_option", "read_paths", "staged_directory"]


def output_option(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The `-o/--output` directory option of the training commands; `what` says what is written there."""
    help_text = f"{what} directory to write (replaces an earlier one there)."
    return click.option(
        "-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help=help_text
    )


def check_output(target: Path, reads: Iterable[Path] = ()) -> None:
    """Refuse a target that exists and is neither empty nor an earlier checkpoint, or that is (or holds,
    or lies inside) a path training reads: its data files and a local base model."""
    try:
        check_dir_target(target, reads, "checkpoint", MARKER)
    except InputError as exc:
        raise OutputError(str(exc)) from None


def read_paths(train_data: Sequence[DataFile], eval_data: Sequence[DataFile], config: TrainConfig) -> list[Path]:
    """What training reads, which its checkpoint must never replace: data files and a local base model."""
    base = Path(config.base_model)
    return [f.path for f in (*train_data, *eval_data)] + ([base] if base.exists() else [])
