"""`scorer train`: fine-tune the product reranker and write a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from train.config import TrainConfig
from train.data import read_files
from train.errors import TrainInputError, param_hint
from train.staging import check_output, read_paths

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_POSITIVE = click.FloatRange(min=0, min_open=True)
DEFAULTS = TrainConfig()  # the flags show and use the config's own defaults


@click.command()
@click.option(
    "--train",
    "train_files",
    type=_FILE,
    multiple=True,
    required=True,
    help="Training data (Parquet or JSONL; pairs or listwise). Repeatable.",
)
@click.option(
    "--eval",
    "eval_files",
    type=_FILE,
    multiple=True,
    help="Evaluation data; pair data also tunes the decision threshold. Repeatable.",
)
@click.option(
    "--base-model",
    default=DEFAULTS.base_model,
    show_default=True,
    help="Hugging Face model name or local directory.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Checkpoint directory to write (replaces an earlier checkpoint there).",
)
@click.option(
    "--loss",
    type=click.Choice(["lambda", "bce"]),
    default=DEFAULTS.loss,
    show_default=True,
    help="lambda: LambdaLoss NDCG2++ on lists; bce: binary cross-entropy on pairs.",
)
@click.option("--epochs", type=_POSITIVE, default=DEFAULTS.epochs, show_default=True)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_steps,
    help="Stop after this many steps (overrides --epochs).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.batch_size,
    show_default=True,
    help="Lists per step (lambda) or pairs per step (bce).",
)
@click.option("--lr", type=_POSITIVE, default=DEFAULTS.lr, show_default=True)
@click.option(
    "--warmup-ratio",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULTS.warmup_ratio,
    show_default=True,
)
@click.option(
    "--max-length",
    type=click.IntRange(min=8),
    default=DEFAULTS.max_length,
    show_default=True,
    help="Tokens per (query, candidate) pair; longer pairs are truncated.",
)
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
def train(
    train_files: tuple[Path, ...],
    eval_files: tuple[Path, ...],
    base_model: str,
    output: Path,
    loss: str,
    epochs: float,
    max_steps: int | None,
    batch_size: int,
    lr: float,
    warmup_ratio: float,
    max_length: int,
    seed: int,
) -> None:
    """Fine-tune a cross-encoder on product pairs or lists; write a checkpoint.

    The checkpoint directory holds the model, metrics.json (every figure and the
    tuned decision threshold) and a model card README.md. It appears at OUTPUT only
    when training and evaluation succeeded.
    """
    config = TrainConfig(
        base_model=base_model,
        loss=loss,  # type: ignore[arg-type]  # click.Choice guarantees the literal
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        warmup_ratio=warmup_ratio,
        max_length=max_length,
        seed=seed,
    )
    try:
        train_data, eval_data = read_files(train_files), read_files(eval_files)
        check_output(output, read_paths(train_data, eval_data, config))
        from train.trainer import fit  # the torch stack loads only for valid input

        metrics = fit(train_data, output, config, eval_data)
    except TrainInputError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint(exc, eval_files)) from None
    click.echo(f"checkpoint: {output}")
    click.echo(f"threshold: {metrics['threshold']:.4f} ({metrics['threshold_source']})")
    for fmt, figures in metrics["eval"].items():
        shown = ", ".join(
            f"{name} {value:.4f}"
            for name, value in figures.items()
            if name in ("map", "mrr@10", "ndcg@10", "precision", "recall", "f1")
        )
        click.echo(f"eval {fmt}: {shown}")
