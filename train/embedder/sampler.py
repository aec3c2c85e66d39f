"""Batches in which no two pairs are of one product, so that no in-batch negative is the same product."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class GroupFreeBatches:
    """Batches of pair indices in which no two pairs are of one product (their in-batch negatives are
    true negatives); shuffled per epoch. A pair that would repeat a product waits for a later batch."""

    def __init__(self, groups: Sequence[int], batch_size: int, seed: int) -> None:
        self.groups, self.batch_size, self.seed, self.epoch = list(groups), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        waiting = list(range(len(self.groups)))
        random.Random(self.seed + self.epoch).shuffle(waiting)
        while waiting:
            batch: list[int] = []
            seen: set[int] = set()
            rest: list[int] = []
            for index in waiting:
                if len(batch) < self.batch_size and self.groups[index] not in seen:
                    batch.append(index)
                    seen.add(self.groups[index])
                else:
                    rest.append(index)
            waiting = rest
            yield batch

    def __len__(self) -> int:
        return sum(1 for _ in self)  # more than len / batch_size where one product has many pairs


def group_free_sampler(groups: Sequence[int], seed: int) -> Callable[..., GroupFreeBatches]:
    def build(dataset: Any, batch_size: int, **_: Any) -> GroupFreeBatches:
        return GroupFreeBatches(groups, batch_size, seed)

    return build
