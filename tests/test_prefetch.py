"""Ordered, bounded prefetch (`scorer.prefetch`): order kept, work bounded, errors in order, threads stopped."""

from __future__ import annotations

import threading
import time

import pytest

from scorer.errors import InputError
from scorer.prefetch import prefetched


def test_prefetch_keeps_order_with_slow_early_items() -> None:
    def work(i: int) -> int:
        time.sleep(0.02 if i % 3 == 0 else 0.0)  # early items finish last
        return i * i

    with prefetched(range(40), work, workers=4, depth=5) as results:
        assert list(results) == [i * i for i in range(40)]


def test_prefetch_is_bounded() -> None:
    started, consumed, most_ahead = [], [], [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
            most_ahead[0] = max(most_ahead[0], len(started) - len(consumed))
        return i

    with prefetched(range(100), work, workers=3, depth=4) as results:
        for item in results:
            time.sleep(0.002)  # a slow consumer: the feeder runs ahead as far as it may
            consumed.append(item)
    assert consumed == list(range(100))
    # depth futures queued + one submitted while the feeder waits to queue it + the one being consumed
    assert 4 <= most_ahead[0] <= 4 + 2


def test_prefetch_propagates_errors_in_order() -> None:
    def work(i: int) -> int:
        if i == 7:
            raise InputError("pairs.parquet: column 'query', row 7: null text")
        return i

    seen = []
    with (
        pytest.raises(InputError, match=r"^pairs.parquet: column 'query', row 7: null text$"),
        prefetched(range(20), work, workers=3, depth=3) as results,
    ):
        seen.extend(results)
    assert seen == list(range(7))

    def source():
        yield from range(5)
        raise InputError("pairs.parquet: corrupt Parquet data near row 5")

    seen.clear()
    with (
        pytest.raises(InputError, match="near row 5"),
        prefetched(source(), lambda i: i, workers=2, depth=2) as results,
    ):
        seen.extend(results)
    assert seen == list(range(5))


def test_prefetch_stops_its_threads_when_the_consumer_leaves() -> None:
    before = threading.active_count()
    with prefetched(iter(range(10_000)), lambda i: i, workers=4, depth=8) as results:
        assert next(results) == 0
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="at least 1"), prefetched(range(3), lambda i: i, workers=0):
        pass
