"""`scorer run --engine ray`: the same windows, batches and session code, on a pool of Ray actors.

The driver checks the inputs, takes the output's lock and staging directory exactly as the local engine
does, and lists the windows not committed yet (input i's window k holds rows [k * W, (k + 1) * W), the same
cut as the local engine's, so fp32 and int8 scores are bit-identical to a local run). Ray Data hands those
windows to a pool of actors (`ActorPoolStrategy`), each holding one loaded variant; an actor reads its
window's row groups, prepares, scores and commits the window's part file itself (write, fsync, rename:
idempotent, so a retried task after a killed worker is harmless). The driver then assembles the parts, in
input order, into the single output; a driver killed mid-run resumes from the committed parts.

The output directory must be on storage every worker reaches (a shared file system on a cluster).
Duplicate pairs are found within a window (and `--reuse` everywhere); across windows each worker keeps its
own record, so `pairs_deduplicated` can be lower than the local engine's, the scores being the same.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from scorer.errors import InputError
from scorer.model import LoadedModel, Stats
from scorer.output import StagedOutput
from scorer.reader import InputFile
from scorer.reuse import ScoreIndex
from scorer.runner import (
    Counts,
    RunJob,
    RunSettings,
    output_schema,
    prepare_window,
    progress_bar,
    report,
    score_window,
)
from scorer.windows import WindowKey, read_window, window_keys

ACTOR_ENV = {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
_COUNTERS = ("pairs", "tokens", "padded_tokens", "truncated", "batches", "reused", "deduplicated")


class WindowScorer:
    """A Ray actor: one loaded variant; scores whole windows and commits their part files."""

    def __init__(
        self,
        artifact: str,
        precision: str,
        threads: int,
        inputs: list[InputFile],
        settings: RunSettings,
        staged: StagedOutput,
        previous: Any,
    ) -> None:
        import ray

        self.model = LoadedModel.load(Path(artifact), precision, threads)
        self.inputs, self.settings, self.staged = inputs, settings, staged
        self.previous: ScoreIndex = ray.get(previous) if isinstance(previous, ray.ObjectRef) else previous
        self.schema = output_schema(inputs, self.model, settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {name: [] for name in (*_COUNTERS, "rows", "pairs_total", "error")}
        for values in zip(*(batch[name] for name in ("file_index", "index", "first_row", "rows")), strict=True):
            key = WindowKey(*(int(v) for v in values))
            source = self.inputs[key.file_index]
            counts, stats, error = Counts(), Stats(), ""
            try:
                window = read_window(source, key, self.settings.windows)
                item = prepare_window(window, self.model, self.settings, source.path, False, self.previous)
                done = score_window(item, self.model, self.settings, self.schema, ScoreIndex(), counts)
                self.staged.commit(key, done.table)
                stats, pairs_total = done.stats, len(window.queries)
            except InputError as exc:
                error, pairs_total = str(exc), 0
            for name in _COUNTERS[:5]:
                out[name].append(getattr(stats, name))
            out["reused"].append(counts.reused)
            out["deduplicated"].append(counts.deduplicated)
            out["pairs_total"].append(pairs_total)
            out["rows"].append(key.rows)
            out["error"].append(error)
        return out


REACH_SECONDS = 5.0  # how long the preflight waits for a cluster address to answer


def preflight(address: str | None, workers: int, threads: int, cores: int | None = None) -> str | None:
    """Why `--engine ray` cannot run as asked (checked before the model loads), or None: Ray (and, for a `ray://`
    address, its client) installed; a local pool no larger than this machine's cores; an address that answers."""
    if importlib.util.find_spec("ray") is None:
        return "--engine ray needs Ray: pip install -e '.[ray]'"
    if address and address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        return f"--address {address} needs Ray's client: pip install -e '.[ray]' (it installs ray[client])"
    if not address:
        cores = cores or os.cpu_count() or 1
        if workers * threads > cores:
            return (
                f"a local Ray pool of {workers} workers x {threads} threads needs {workers * threads} cores; this "
                f"machine has {cores} (give --address to use a cluster)"
            )
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if host and port.isdigit():
        try:
            socket.create_connection((host, int(port)), timeout=REACH_SECONDS).close()
        except OSError as exc:
            return f"--address {address}: no Ray cluster answers there ({exc})"
    return None


def _connect(address: str | None, workers: int, threads: int) -> bool:
    """Join the cluster at `address`, or start a local Ray instance sized for the pool; True if started here."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows its own
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"runtime_env": {"env_vars": ACTOR_ENV}, "log_to_driver": False}
    options["logging_level"] = logging.WARNING
    if address:
        ray.init(address=address, **options)
    else:
        cpus = max(workers * threads, 1)
        ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=128 * 1024 * 1024, **options)
    return True


def run(job: RunJob, address: str | None = None, workers: int = 2, threads_per_worker: int = 1) -> dict[str, Any]:
    """Score the job on a Ray actor pool of `workers` actors (at `address`, or a local Ray instance); returns the
    run report."""
    import ray
    import ray.data

    inputs, model, output, settings, reuse = job.inputs, job.model, job.output, job.settings, job.reuse
    if settings.labels_col:
        raise InputError("--labels-col is computed by the local engine only; drop --engine ray for ranking metrics")
    staged = job.staged()
    schema = output_schema(inputs, model, settings)
    keys = window_keys(inputs, settings.window_rows)
    todo = [key for key in keys if not staged.done(key)]
    counts, stats = Counts(), Stats()
    pending = set(todo)
    resumed = [key for key in keys if key not in pending]
    counts.resumed = sum(key.rows for key in resumed)
    counts.resumed_pairs = pairs = sum(len(staged.scores(key, settings.score_col)) for key in resumed)
    start = time.perf_counter()
    started = _connect(address, workers, threads_per_worker)
    try:
        if todo:
            previous_ref = ray.put(job.previous)
            dataset = ray.data.from_items([asdict(key) for key in todo], override_num_blocks=len(todo))
            scored = dataset.map_batches(
                WindowScorer,
                fn_constructor_kwargs={
                    "artifact": str(model.directory),
                    "precision": model.precision,
                    "threads": threads_per_worker,
                    "inputs": inputs,
                    "settings": settings,
                    "staged": staged,
                    "previous": previous_ref,
                },
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=threads_per_worker,  # Ray Data restarts a killed actor and retries its window
            )
            with progress_bar(job.show_progress) as progress:
                task = progress.add_task("score", total=sum(key.rows for key in todo), rate=0.0)
                for row in scored.iter_rows():
                    if row["error"]:
                        raise InputError(row["error"])
                    stats.add(Stats(*(int(row[name]) for name in _COUNTERS[:5])))
                    counts.reused += int(row["reused"])
                    counts.deduplicated += int(row["deduplicated"])
                    pairs += int(row["pairs_total"])
                    elapsed = time.perf_counter() - start
                    progress.update(task, advance=int(row["rows"]), rate=stats.pairs / elapsed if elapsed else 0.0)
    finally:
        if started:
            ray.shutdown()
    staged.finalize(schema, keys)
    result = report(inputs, model, output, settings, reuse, stats, counts, pairs, time.perf_counter() - start)
    return {**result, "engine": "ray", "workers": workers, "threads_per_worker": threads_per_worker}
