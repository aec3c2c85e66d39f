"""The `scorer` command line: a Click group whose commands load lazily.

Each package declares its commands in its own `cli.py` (`scorer/cli.py`: run, `export/cli.py`: export and
verify, `train/cli.py`, `train/embedder/cli.py`, `scorer/candidates/cli.py`, `scorer/grouping/cli.py`);
`COMMANDS` lists them. `scorer run` must start fast and never import torch, so each command's module is
imported only when that command is invoked.
"""

from __future__ import annotations

import importlib

import click

from scorer.errors import ScorerError

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "run": "scorer.cli:run",
    "export": "export.cli:export",
    "verify": "export.cli:verify",
    "train": "train.cli:train",
    "train-embedder": "train.embedder.cli:train_embedder",
    "candidates": "scorer.candidates.cli:candidates",
    "group": "scorer.grouping.cli:group",
}


class ReportsErrors:
    """Mixin for Click commands: the library's errors (`scorer.errors`) become Click errors, reported on
    one line with their exit status (2 for bad input, 1 otherwise)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except ScorerError as exc:
            error = click.ClickException(str(exc))
            error.exit_code = exc.exit_code
            raise error from None


class Command(ReportsErrors, click.Command):
    """A standalone command (`python -m demo`) that reports library errors like `scorer` does."""


class LazyGroup(ReportsErrors, click.Group):
    """A group that imports a command's module only when the command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="product-scorer")
def main() -> None:
    """Score (query, candidate) product pairs with a cross-encoder exported to ONNX."""
