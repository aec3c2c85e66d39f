"""Stop training at a time budget, and keep the epoch with the best F1 on the eval pairs.

`Selection` is a transformers `TrainerCallback`. After every epoch (and after a stop in
the middle of one) it scores the eval pairs, tunes the threshold for F1 on them, and keeps
a copy of the weights whenever that F1 beats the best so far; after `patience` epochs
without gain it stops training. At the end, `restore` puts the best weights back. Only the
eval (valid) pairs choose: test figures never reach it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import torch
from sentence_transformers.cross_encoder import CrossEncoder
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from train.evaluate import pair_metrics, predict


def valid_f1(model: CrossEncoder, pairs: pa.Table) -> float:
    """F1 on the pairs at the threshold that maximises it."""
    return float(pair_metrics(pairs, predict(model, pairs))["f1"])


class Selection(TrainerCallback):
    """Stops at `budget_s` seconds of training; with `valid` pairs, keeps the best epoch.

    `stopped` says why training ended ("time budget", "early stop", or None when it ran
    its epochs or steps); `history` lists every evaluation; `eval_seconds` is the time
    spent evaluating.
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)  # seconds; tests give a fake clock

    def __init__(
        self, model: CrossEncoder, valid: pa.Table | None, patience: int, budget_s: float | None = None
    ) -> None:
        self.model, self.valid, self.patience, self.budget_s = model, valid, patience, budget_s
        self.deadline = float("inf")
        self.stopped: str | None = None
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.eval_seconds = 0.0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.budget_s is not None:
            self.deadline = self.clock() + self.budget_s

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.clock() >= self.deadline:
            control.should_training_stop = True
            self.stopped = "time budget"

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if self.valid is None:
            return
        started = time.perf_counter()
        f1 = valid_f1(self.model, self.valid)
        self.eval_seconds += time.perf_counter() - started
        entry = {"epoch": round(state.epoch or 0.0, 4), "step": state.global_step, "valid_f1": f1}
        self.history.append(entry)
        if self.best is None or f1 > self.best["valid_f1"]:
            self.best = entry
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        elif len(self.history) - self.history.index(self.best) > self.patience and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped = "early stop"

    def restore(self) -> None:
        """Load the best epoch's weights into the model (a no-op without evaluations)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
