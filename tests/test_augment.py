"""Span augmentation of training pairs (`train.augment`): what each operator may change, and that training reads it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from builders import tiny_cross_encoder

from samples.catalogue import pairs_table
from train import augment
from train.augment import MAX_SPAN, PairAugmenter, span_delete, span_shuffle
from train.config import RunOptions, TrainConfig
from train.trainer import train

WORDS = ["apple", "iphone", "13", "pro", "max", "256", "gb", "graphite", "unlocked"]


def test_span_delete_removes_one_contiguous_span_of_at_most_four_words() -> None:
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(300):
        out = span_delete(WORDS, rng)
        removed = len(WORDS) - len(out)
        lengths.add(removed)
        assert any(out == WORDS[:i] + WORDS[i + removed :] for i in range(len(WORDS) - removed + 1))
    assert lengths == set(range(1, MAX_SPAN + 1))
    assert span_delete(["one"], rng) == ["one"]
    assert all(len(span_delete(["a", "b"], rng)) == 1 for _ in range(20))  # never every word


def test_span_shuffle_keeps_the_words_and_moves_only_one_span() -> None:
    rng = np.random.default_rng(1)
    changed = 0
    for _ in range(300):
        out = span_shuffle(WORDS, rng)
        assert Counter(out) == Counter(WORDS)
        moved = [i for i, (a, b) in enumerate(zip(out, WORDS, strict=True)) if a != b]
        if moved:
            changed += 1
            assert moved[-1] - moved[0] < MAX_SPAN
    assert changed > 150  # a span of 2 to 4 distinct words is usually reordered


def test_the_augmenter_follows_its_rate_and_seed() -> None:
    batch = {
        "query": [" ".join(WORDS)] * 400,
        "candidate": ["sony wh-1000xm4 black headphones"] * 400,
        "label": [1] * 400,
    }
    assert PairAugmenter(0.0, seed=5)(batch) == batch
    out = PairAugmenter(0.5, seed=5)(batch)
    assert out["label"] == batch["label"]
    for side in ("query", "candidate"):
        changed = sum(a != b for a, b in zip(out[side], batch[side], strict=True))
        assert 140 < changed <= 200  # half the sides get an operator; a shuffle can leave a span as it was
    assert PairAugmenter(0.5, seed=5)(batch) == out
    assert PairAugmenter(0.5, seed=6)(batch) != out


def test_training_reads_augmented_pairs_and_records_the_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    pairs = tmp_path / "pairs.parquet"
    pq.write_table(pairs_table(64, seed=3), pairs)
    calls = []
    real = augment.augment_text

    def watched(text: str, rng: np.random.Generator) -> str:
        calls.append(text)
        return real(text, rng)

    monkeypatch.setattr(augment, "augment_text", watched)
    config = TrainConfig(base_model=str(tiny_cross_encoder("bert", tmp_path / "bert")), batch_size=16, max_steps=2)
    metrics = train([pairs], tmp_path / "ckpt", config, progress=False, options=RunOptions(augment=1.0, bf16=False))
    assert metrics["options"]["augment"] == 1.0
    assert len(calls) >= 2 * 2 * 16  # two steps of 16 rows, both sides of every row
    calls.clear()
    train([pairs], tmp_path / "plain", config, progress=False, options=RunOptions(bf16=False))
    assert calls == []
