"""Ditto's span augmentation of training pairs, applied on the fly.

Each time a training row is read, with probability `rate` each side of the pair gets one operator, picked
uniformly: delete a span of 1 to `MAX_SPAN` words, or shuffle the words of such a span. The label stays: a
product with a few words missing or reordered is still the same product, which is what a catalogue's titles
look like across retailers. The rows are drawn anew each epoch from one generator seeded by the run's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_SPAN = 4
SIDES = ("query", "candidate")


def span_delete(words: list[str], rng: np.random.Generator) -> list[str]:
    """The words less one random span of 1 to `MAX_SPAN` (never all of them)."""
    if len(words) < 2:
        return words
    length = int(rng.integers(1, min(MAX_SPAN, len(words) - 1) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    return words[:start] + words[start + length :]


def span_shuffle(words: list[str], rng: np.random.Generator) -> list[str]:
    """The words with one random span of 2 to `MAX_SPAN` shuffled in place."""
    if len(words) < 2:
        return words
    length = int(rng.integers(2, min(MAX_SPAN, len(words)) + 1))
    start = int(rng.integers(0, len(words) - length + 1))
    span = words[start : start + length]
    return words[:start] + [span[i] for i in rng.permutation(length)] + words[start + length :]


OPERATORS = (span_delete, span_shuffle)


def augment_text(text: str, rng: np.random.Generator) -> str:
    """The text with one operator, picked uniformly, applied to its words."""
    operator = OPERATORS[int(rng.integers(len(OPERATORS)))]
    return " ".join(operator(text.split(), rng))


class PairAugmenter:
    """A `datasets` transform: each side of each row read is augmented with probability `rate`."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out = dict(batch)
        for side in SIDES:
            out[side] = [augment_text(t, self.rng) if self.rng.random() < self.rate else t for t in batch[side]]
        return out
