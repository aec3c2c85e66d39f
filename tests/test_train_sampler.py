"""Length-grouped batches: every row once per epoch, seeded order, less padding, used unless turned off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from builders import tiny_cross_encoder

from samples.catalogue import listwise_table, pairs_table
from train.config import RunOptions, TrainConfig
from train.sampler import LengthGroupedBatchSampler, text_lengths
from train.trainer import train


def batches(dataset: datasets.Dataset, seed: int = 0, epoch: int = 0, drop_last: bool = False) -> list[list[int]]:
    sampler = LengthGroupedBatchSampler(dataset, batch_size=16, drop_last=drop_last, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_every_row_once_and_len_matches() -> None:
    dataset = datasets.Dataset(pairs_table(1000, seed=0))
    drawn = batches(dataset)
    assert sorted(i for batch in drawn for i in batch) == list(range(1000))
    assert len(drawn) == len(LengthGroupedBatchSampler(dataset, 16, drop_last=False)) == 63
    kept = batches(dataset, drop_last=True)
    assert len(kept) == 62 and all(len(batch) == 16 for batch in kept)


def test_order_is_seeded_per_epoch() -> None:
    dataset = datasets.Dataset(pairs_table(500, seed=0))
    assert batches(dataset, seed=3) == batches(dataset, seed=3)
    assert batches(dataset, seed=3) != batches(dataset, seed=4)
    assert batches(dataset, seed=3, epoch=1) != batches(dataset, seed=3, epoch=0)


def test_grouping_cuts_padding_on_the_catalogue() -> None:
    dataset = datasets.Dataset(pairs_table(2000, seed=0))
    lengths = text_lengths(dataset)
    grouped = sum(lengths[b].max() * len(b) for b in batches(dataset))
    shuffled = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [shuffled[i : i + 16] for i in range(0, len(shuffled), 16)]
    plain = sum(lengths[b].max() * len(b) for b in random_batches)
    assert grouped < 0.5 * plain


def test_lists_are_measured_by_their_longest_document() -> None:
    table = listwise_table(3, seed=0)
    dataset = datasets.Dataset(table)
    expected = [len(q) + max(map(len, d)) for q, d in zip(table["query"].to_pylist(), table["documents"].to_pylist())]
    assert text_lengths(dataset).tolist() == expected


def test_training_uses_the_grouped_batches_unless_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    drawn: list[int] = []
    grouped_iter = LengthGroupedBatchSampler.__iter__

    def watched(self: LengthGroupedBatchSampler) -> Iterator[list[int]]:
        for batch in grouped_iter(self):
            drawn.append(len(batch))
            yield batch

    monkeypatch.setattr(LengthGroupedBatchSampler, "__iter__", watched)
    pairs = tmp_path / "pairs.parquet"
    pq.write_table(pairs_table(64, seed=3), pairs)
    config = TrainConfig(base_model=str(tiny_cross_encoder("bert", tmp_path / "bert")), batch_size=16, max_steps=3)
    train([pairs], tmp_path / "grouped", config, progress=False, options=RunOptions(bf16=False))
    assert drawn[:3] == [16, 16, 16]
    drawn.clear()
    options = RunOptions(bf16=False, length_grouped=False)
    metrics = train([pairs], tmp_path / "random", config, progress=False, options=options)
    assert drawn == [] and metrics["train"]["steps"] == 3 and metrics["options"]["length_grouped"] is False
