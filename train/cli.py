"""`scorer train`: fine-tune the product reranker and write a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from scorer.flags import FiniteFloat
from train.config import RECIPE_DEFAULTS, RunOptions, TrainConfig
from train.data import read_files
from train.errors import TrainInputError, param_hint
from train.staging import check_output, output_option, read_paths

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_POSITIVE = FiniteFloat(min=0, min_open=True)
DEFAULTS, OPTIONS = TrainConfig(), RunOptions()  # the flags show and use the config's own defaults


def _by_recipe(name: str) -> str:
    pairs, lists = RECIPE_DEFAULTS["pairs"][name], RECIPE_DEFAULTS["lambda"][name]
    return f"[default: {pairs:g} for the pair recipe, {lists:g} for the seed recipes]"


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
@output_option("Checkpoint")
@click.option(
    "--loss",
    type=click.Choice(["lambda", "bce"]),
    default=DEFAULTS.loss,
    help="Run the seed recipe with this loss: lambda (LambdaLoss NDCG2++ on lists) or bce (plain binary "
    "cross-entropy on pairs). Unset: the pair recipe on pair data, lambda on listwise data.",
)
@click.option("--epochs", type=_POSITIVE, default=DEFAULTS.epochs, help=f"Most epochs. {_by_recipe('epochs')}")
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
    help=f"Lists per step (lambda) or pairs per step. {_by_recipe('batch_size')}",
)
@click.option("--lr", type=_POSITIVE, default=DEFAULTS.lr, help=f"Learning rate. {_by_recipe('lr')}")
@click.option(
    "--warmup-ratio",
    type=FiniteFloat(min=0, max=1),
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
@click.option(
    "--time-budget",
    type=_POSITIVE,
    default=OPTIONS.time_budget,
    metavar="MINUTES",
    help="Stop training after this many minutes and keep the best checkpoint so far.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=OPTIONS.patience,
    show_default=True,
    help="Pair recipe: stop after this many epochs without a better F1 on the --eval pairs.",
)
@click.option(
    "--both-orders/--one-order",
    default=OPTIONS.both_orders,
    show_default=True,
    help="Pair recipe: train on every pair in both orders (sides swapped).",
)
@click.option(
    "--pos-weight",
    type=_POSITIVE,
    default=OPTIONS.pos_weight,
    help="Pair recipe: weight of a positive pair in the loss. [default: negatives per positive in --train]",
)
@click.option(
    "--augment",
    type=FiniteFloat(0.0, 1.0),
    default=OPTIONS.augment,
    show_default=True,
    help="Pair recipe: chance that a side of a training pair is read with a span of words deleted or shuffled.",
)
@click.option(
    "--join-codes",
    is_flag=True,
    default=OPTIONS.join_codes,
    help="Tokenize product codes alike with or without hyphens (DSC-W170 as DSCW170); the rule is saved in the "
    "checkpoint's tokenizer, so export and `scorer run` apply it too.",
)
@click.option(
    "--bf16/--no-bf16",
    default=OPTIONS.bf16,
    help="bf16 autocast on CPU. [default: on for the pair recipe where the CPU has AMX or AVX512-BF16]",
)
@click.option(
    "--query-col",
    default=OPTIONS.query_col,
    show_default=True,
    help="Pair files' query text column, or columns joined by a space (title,brand,model_no); recorded, so that "
    "`scorer run` builds the text the same way.",
)
@click.option(
    "--candidate-col",
    default=OPTIONS.candidate_col,
    show_default=True,
    help="Pair files' candidate text column or columns: as --query-col.",
)
def train(
    train_files: tuple[Path, ...],
    eval_files: tuple[Path, ...],
    base_model: str,
    output: Path,
    loss: str | None,
    epochs: float | None,
    max_steps: int | None,
    batch_size: int | None,
    lr: float | None,
    warmup_ratio: float,
    max_length: int,
    seed: int,
    time_budget: float | None,
    patience: int,
    both_orders: bool,
    pos_weight: float | None,
    augment: float,
    join_codes: bool,
    bf16: bool | None,
    query_col: str,
    candidate_col: str,
) -> None:
    """Fine-tune a cross-encoder on product pairs or lists; write a checkpoint.

    On pair data it runs the pair recipe: BCE on both pair orders, many epochs, the
    epoch with the best F1 on the --eval pairs kept, early stopping; on listwise data
    the seed's LambdaLoss recipe. The checkpoint directory holds the model,
    metrics.json (every figure, the tuned decision threshold, the recipe and why,
    where training stopped) and a model card README.md. It appears at OUTPUT only
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
    options = RunOptions(
        time_budget=time_budget,
        patience=patience,
        both_orders=both_orders,
        pos_weight=pos_weight,
        augment=augment,
        join_codes=join_codes,
        bf16=bf16,
        query_col=query_col,
        candidate_col=candidate_col,
    )
    try:
        train_data = read_files(train_files, query_col, candidate_col)
        eval_data = read_files(eval_files, query_col, candidate_col)
        check_output(output, read_paths(train_data, eval_data, config))
        from train.trainer import fit  # the torch stack loads only for valid input

        metrics = fit(train_data, output, config, eval_data, options=options)
    except TrainInputError as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint(exc, eval_files)) from None
    click.echo(f"checkpoint: {output}")
    click.echo(f"recipe: {metrics['recipe']} ({metrics['recipe_reason']}); stopped: {metrics['train']['stopped']}")
    click.echo(f"threshold: {metrics['threshold']:.4f} ({metrics['threshold_source']})")
    for fmt, figures in metrics["eval"].items():
        shown = ", ".join(
            f"{name} {value:.4f}"
            for name, value in figures.items()
            if name in ("map", "mrr@10", "ndcg@10", "precision", "recall", "f1")
        )
        click.echo(f"eval {fmt}: {shown}")
