"""Hyperparameters of a fine-tuning run (importable without the torch stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_BASE_MODEL = "jhu-clsp/mmBERT-small"
Loss = Literal["lambda", "bce"]


@dataclass(frozen=True)
class TrainConfig:
    """The seed recipe by default; `max_steps`, when set, overrides `epochs`.

    `batch_size` counts lists for LambdaLoss and pairs for BCE.
    """

    base_model: str = DEFAULT_BASE_MODEL
    loss: Loss = "lambda"
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_model", str(self.base_model))
