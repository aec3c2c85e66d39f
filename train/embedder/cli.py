"""`scorer train-embedder`: the command."""

from __future__ import annotations

from pathlib import Path

import click

from scorer.errors import InputError
from scorer.flags import FiniteFloat
from scorer.paths import check_dir_target
from train.embedder.data import Columns, read_positive_pairs
from train.embedder.trainer import MARKER, EmbedderConfig, default_base_model, fit
from train.errors import OutputError, TrainInputError, param_hint
from train.staging import output_option

DEFAULTS = EmbedderConfig(base_model="")  # the flags show and use the config's own defaults
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_POSITIVE = FiniteFloat(min=0, min_open=True)


@click.command("train-embedder")
@click.option(
    "--train", "train_files", type=_FILE, multiple=True, required=True, help="Parquet pair files. Repeatable."
)
@output_option("Model")
@click.option(
    "--base-model", default=None, help="Sentence-transformers model, directory or hub name [all-MiniLM-L6-v2, offline]."
)
@click.option("--epochs", type=_POSITIVE, default=DEFAULTS.epochs, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=2), default=DEFAULTS.batch_size, show_default=True, help="Pairs per step."
)
@click.option("--lr", type=_POSITIVE, default=DEFAULTS.lr, show_default=True)
@click.option(
    "--max-length", type=click.IntRange(min=8), default=DEFAULTS.max_length, show_default=True, help="Tokens per text."
)
@click.option(
    "--loss",
    type=click.Choice(["mnrl", "symmetric"]),
    default=DEFAULTS.loss,
    show_default=True,
    help="MultipleNegativesRankingLoss, or its symmetric variant.",
)
@click.option(
    "--text",
    type=click.Choice(["product-name", "raw"]),
    default=DEFAULTS.text,
    show_default=True,
    help="Train on each title's product name (what `scorer candidates` embeds) or on the whole text.",
)
@click.option("--query-col", default="query", show_default=True)
@click.option("--candidate-col", default="candidate", show_default=True)
@click.option("--label-col", default="label", show_default=True, help="1 (or >= 0.5) marks a pair of one product.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_embedder(
    train_files: tuple[Path, ...],
    output: Path,
    base_model: str | None,
    epochs: float,
    batch_size: int,
    lr: float,
    max_length: int,
    loss: str,
    text: str,
    query_col: str,
    candidate_col: str,
    label_col: str,
    seed: int,
    progress: bool,
) -> None:
    """Fine-tune the blocking embedder on the positive pairs of TRAIN files; write a model directory for
    `scorer candidates --embedder-model`."""
    config = EmbedderConfig(
        base_model=base_model or default_base_model(),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_length=max_length,
        seed=seed,
        loss=loss,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        text=text,  # type: ignore[arg-type]
    )
    try:
        base = Path(config.base_model)
        try:
            check_dir_target(output, [*train_files, *([base] if base.exists() else [])], "-o/--output", MARKER)
        except InputError as exc:
            raise OutputError(str(exc)) from None
        pairs = read_positive_pairs(train_files, Columns(query_col, candidate_col, label_col), config.text)
        click.echo(f"{len(pairs):,} positive pairs from {len(train_files)} file(s)", err=True)
        record = fit(pairs, output, config, progress)
    except TrainInputError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint(exc)) from None
    click.echo(f"embedder model: {output} ({record['steps']} steps, {record['seconds']} s)")
