"""`scorer run` end to end: validated inputs -> windows (read and tokenized one ahead, in a thread) ->
padding-aware ONNX batches -> committed part files -> one atomic output, with progress and a report."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from scorer.errors import InputError
from scorer.output import StagedOutput
from scorer.pipeline import LoadedModel, Stats
from scorer.reader import InputFile, Window, WindowKey, iter_windows, null_message
from scorer.tokenize import EncodedPairs


@dataclass
class RunSettings:
    """What a run was asked to do; everything here except `threads` is part of the resume fingerprint."""

    query_col: str = "query"
    candidate_col: str = "candidate"
    score_col: str = "score"
    on_null: str = "error"
    batch_tokens: int = 8192
    window_rows: int = 4096
    threads: int | None = None


@dataclass
class Prepared:
    """A window, the mask of its scorable rows, and their tokens (None when already committed)."""

    window: Window
    scorable: np.ndarray
    encoded: EncodedPairs | None


_DONE = object()


@contextmanager
def _background(produce: Iterator[Prepared], depth: int = 2) -> Iterator[Iterator[Prepared]]:
    """Run a generator one or two items ahead in a thread, re-raising its errors in the consumer.

    On leaving (done, error or interrupt) the thread is stopped and joined, so the process never exits
    while it is inside native code (tokenizers, pyarrow): that aborts the interpreter at shutdown.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in produce:
                if stop.is_set():
                    return
                items.put(item)
            items.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            items.put(exc)

    def consume() -> Iterator[Prepared]:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    thread = threading.Thread(target=worker, name="scorer-reader")
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # drain, so a worker blocked on a full queue can see `stop`
            with suppress(queue.Empty):
                items.get(timeout=0.05)
        thread.join()


def fingerprint(inputs: list[InputFile], model: LoadedModel, settings: RunSettings) -> dict[str, Any]:
    """Identity of a run for resuming: same inputs, same variant, same batching."""
    fields = {k: v for k, v in vars(settings).items() if k != "threads"}
    return {
        "inputs": [source.fingerprint() for source in inputs],
        "model_sha256": model.sha256,
        "precision": model.precision,
        "settings": fields,
    }


def output_schema(inputs: list[InputFile], score_col: str) -> pa.Schema:
    return inputs[0].schema.append(pa.field(score_col, pa.float32()))


def _prepare(
    inputs: list[InputFile], model: LoadedModel, settings: RunSettings, done: Callable[[WindowKey], bool]
) -> Iterator[Prepared]:
    for window in iter_windows(inputs, settings.query_col, settings.candidate_col, settings.window_rows):
        scorable = np.ones(window.batch.num_rows, dtype=bool)
        if done(window.key):
            yield Prepared(window, scorable, None)
            continue
        if window.null_rows:
            if settings.on_null == "error":
                path = inputs[window.file_index].path
                raise InputError(null_message(window, path, settings.query_col, settings.candidate_col))
            scorable[window.null_rows] = False
        keep = np.flatnonzero(scorable)
        encoded = model.tokenizer.encode([window.queries[i] for i in keep], [window.candidates[i] for i in keep])
        yield Prepared(window, scorable, encoded)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("scoring"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} pairs"),
        TextColumn("{task.fields[rate]:,.0f} pairs/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def run(
    inputs: list[InputFile],
    model: LoadedModel,
    output: Path,
    settings: RunSettings,
    restart: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Score every row of `inputs` into `output`; returns the run report."""
    staged = StagedOutput(output, fingerprint(inputs, model, settings), restart=restart)
    schema = output_schema(inputs, settings.score_col)
    total = sum(source.num_rows for source in inputs)
    stats = Stats()
    resumed_rows = 0
    keys: list[WindowKey] = []
    start = time.perf_counter()
    with (
        _progress(show_progress) as progress,
        _background(_prepare(inputs, model, settings, staged.done)) as prepared,
    ):
        task = progress.add_task("score", total=total, rate=0.0)
        for item in prepared:
            window = item.window
            keys.append(window.key)
            if item.encoded is None:
                resumed_rows += window.batch.num_rows
            else:
                scores, window_stats = model.score_encoded(item.encoded, settings.batch_tokens)
                full = np.zeros(window.batch.num_rows, dtype=np.float32)
                full[item.scorable] = scores
                column = pa.array(full, pa.float32(), mask=~item.scorable)
                table = pa.Table.from_batches([window.batch]).append_column(schema.field(settings.score_col), column)
                staged.commit(window.key, table)
                stats.add(window_stats)
            elapsed = time.perf_counter() - start
            progress.update(task, advance=window.batch.num_rows, rate=stats.pairs / elapsed if elapsed else 0.0)
    staged.finalize(schema, keys)
    seconds = time.perf_counter() - start
    return {
        "output": str(output),
        "rows": total,
        "rows_resumed": resumed_rows,
        "pairs_scored": stats.pairs,
        "null_rows": total - resumed_rows - stats.pairs,
        "seconds": round(seconds, 3),
        "pairs_per_s": round(stats.pairs / seconds, 2) if seconds else None,
        "tokens": stats.tokens,
        "padded_tokens": stats.padded_tokens,
        "padding_efficiency": round(stats.padding_efficiency, 4),
        "truncated_pairs": stats.truncated,
        "batches": stats.batches,
        "precision": model.precision,
        "provider": model.onnx.provider,
        "threads": model.onnx.session.get_session_options().intra_op_num_threads,
        "model_sha256": model.sha256,
        "inputs": [str(source.path) for source in inputs],
        "settings": {k: v for k, v in vars(settings).items() if k != "threads"},
    }
