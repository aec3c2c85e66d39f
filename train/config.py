"""Hyperparameters of a fine-tuning run (importable without the torch stack).

Three recipes:

- `pairs` (the default on pair data): BCE on both pair orders with the positives weighted
  by the class ratio, many epochs, F1 on the eval pairs after every epoch, the best
  epoch kept, early stopping, bf16 autocast on CPUs with bf16 instructions;
- `lambda` (the default on listwise data, the seed's): LambdaLoss on lists, 1 epoch;
- `bce` (`loss="bce"`): plain BCE on pairs with the seed's hyperparameters.

Every recipe stops at the time budget when one is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_BASE_MODEL = "jhu-clsp/mmBERT-small"
Loss = Literal["lambda", "bce"]
Recipe = Literal["pairs", "lambda", "bce"]
# What each recipe uses where the config leaves epochs, batch size or learning rate unset.
RECIPE_DEFAULTS: dict[Recipe, dict[str, float | int]] = {
    "pairs": {"epochs": 20.0, "batch_size": 32, "lr": 5e-5},
    "lambda": {"epochs": 1.0, "batch_size": 8, "lr": 2e-5},
    "bce": {"epochs": 1.0, "batch_size": 8, "lr": 2e-5},
}


@dataclass(frozen=True)
class TrainConfig:
    """`loss` None picks the recipe from the training data (`choose_recipe`); `epochs`,
    `batch_size` and `lr` None take the recipe's defaults (`RECIPE_DEFAULTS`).

    `max_steps`, when set, overrides `epochs`. `batch_size` counts lists for LambdaLoss
    and pairs for BCE.
    """

    base_model: str = DEFAULT_BASE_MODEL
    loss: Loss | None = None
    epochs: float | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_model", str(self.base_model))


@dataclass(frozen=True)
class RunOptions:
    """How a run reads, augments, selects and stops (`metrics.json` records them as `options`).

    `both_orders`, `pos_weight` (None: negatives / positives of the training pairs),
    `patience` (epochs without a better eval F1 before stopping) and `augment` (the chance that
    a side of a row read is span-augmented, `train.augment`) apply to the pair recipe;
    `bf16` None means on for the pair recipe where the CPU has bf16 instructions;
    `length_grouped` batches rows of similar length (`train.sampler`), else random batches;
    `join_codes` adds `train.codes`' rule to the tokenizer (saved with the checkpoint);
    `time_budget` (minutes of training) applies to every recipe. The pair columns are
    read as `query` and `candidate`.
    """

    time_budget: float | None = None
    patience: int = 3
    both_orders: bool = True
    pos_weight: float | None = None
    augment: float = 0.0
    bf16: bool | None = None
    length_grouped: bool = True
    join_codes: bool = False
    query_col: str = "query"
    candidate_col: str = "candidate"


def choose_recipe(formats: Sequence[str], loss: Loss | None) -> tuple[Recipe, str]:
    """The recipe for training data of these formats, and why it was chosen."""
    if loss is not None:
        return loss, f"loss {loss!r} was asked for"
    if "listwise" in formats:
        return "lambda", "training data is listwise" if set(formats) == {"listwise"} else "training data holds lists"
    return "pairs", "training data is pairs"


def resolve(config: TrainConfig, recipe: Recipe) -> TrainConfig:
    """The config with the recipe's loss and its defaults where a setting is unset."""
    unset = {name: value for name, value in RECIPE_DEFAULTS[recipe].items() if getattr(config, name) is None}
    return dataclasses.replace(config, loss="lambda" if recipe == "lambda" else "bce", **unset)  # type: ignore[arg-type]
