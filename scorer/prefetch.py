"""Ordered, bounded prefetch: work on the next items of a stream in a thread pool while the consumer
handles the current one.

One feeder thread pulls items from the source (Parquet windows: reading stays sequential) and submits
`work(item)` (tokenizing: the `tokenizers` library releases the GIL in `encode_batch`) to `workers`
threads. At most `depth` submitted items wait for the consumer, so memory stays bounded whatever the
input size. Results come out in source order; an error raised by the source or by `work` reaches the
consumer as the same exception, after the results of the items before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


@contextmanager
def prefetched(items: Iterable[T], work: Callable[[T], R], workers: int = 1, depth: int = 2) -> Iterator[Iterator[R]]:
    """Yield an iterator over `work(item)` for each item, computed up to `depth` items ahead.

    On leaving (done, error or interrupt) the feeder stops, waiting work is cancelled, and running work
    is waited for, so the process never exits while a thread is inside native code (tokenizers,
    pyarrow): that aborts the interpreter at shutdown.
    """
    if workers < 1 or depth < 1:
        raise ValueError(f"workers and depth must be at least 1 (got {workers}, {depth})")
    pending: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scorer-prefetch")

    def feed() -> None:
        source = iter(items)
        try:
            for item in source:
                if stop.is_set():
                    return
                pending.put(pool.submit(work, item))
            pending.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            pending.put(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's open files are closed in this thread

    def consume() -> Iterator[R]:
        while (entry := pending.get()) is not _DONE:
            if isinstance(entry, BaseException):
                raise entry
            future: Future[R] = entry
            yield future.result()

    feeder = threading.Thread(target=feed, name="scorer-reader")
    feeder.start()
    try:
        yield consume()
    finally:
        stop.set()
        while feeder.is_alive():  # drain, so a feeder blocked on a full queue can see `stop`
            with suppress(queue.Empty):
                entry = pending.get(timeout=0.05)
                if isinstance(entry, Future):
                    entry.cancel()
        feeder.join()
        pool.shutdown(wait=True, cancel_futures=True)
