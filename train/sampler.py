"""Length-grouped training batches: rows of similar length pad to less.

A CrossEncoder batch pads every pair to its longest, so one long product description
makes a whole batch of short titles cost as much as long ones. This sampler shuffles
the rows, sorts them by length within windows of `WINDOW` batches, cuts the windows into
batches and shuffles the batch order: each epoch still visits every row once, in an
order set by the seed and the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import datasets
import numpy as np
import torch
from sentence_transformers.base.sampler import DefaultBatchSampler

WINDOW = 16  # batches sorted together


def text_lengths(dataset: datasets.Dataset) -> np.ndarray:
    """Characters per row: the query plus its candidate, or its longest document."""
    queries = np.fromiter((len(q) for q in dataset["query"]), np.int64, dataset.num_rows)
    if "documents" in dataset.column_names:
        others = (max(map(len, docs)) for docs in dataset["documents"])
    else:
        others = (len(c) for c in dataset["candidate"])
    return queries + np.fromiter(others, np.int64, dataset.num_rows)


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """A `DefaultBatchSampler` whose batches hold rows of similar text length."""

    def __init__(
        self,
        dataset: datasets.Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        self.lengths = text_lengths(dataset)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).numpy()
        window = self.batch_size * WINDOW
        batches = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[index]
