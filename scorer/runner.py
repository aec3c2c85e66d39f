"""`scorer run` end to end: validated inputs -> windows (read in a thread, tokenized ahead by a small
pool: `scorer.prefetch`) -> padding-aware ONNX batches -> committed part files -> one atomic output,
with progress and a report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from scorer.errors import InputError
from scorer.listwise import RankingQuality, list_columns
from scorer.model import DEFAULT_BATCH_TOKENS, DEFAULT_WINDOW_ROWS, LoadedModel, Stats
from scorer.output import StagedOutput
from scorer.prefetch import prefetched
from scorer.reader import InputFile
from scorer.reuse import DIGEST_KEY, ScoreIndex, content_digest, output_metadata, pair_keys
from scorer.session import CUDA, default_threads
from scorer.tokenize import EncodedPairs
from scorer.windows import DEFAULT_MAX_DOCUMENTS, Window, WindowKey, WindowSpec, iter_windows, null_message

MAX_PREFETCH_WORKERS = 8  # a run holds at most workers + 3 prepared windows (prefetch depth workers + 1)
UNFINGERPRINTED = ("prefetch_workers",)  # settings that change speed, never scores


@dataclass
class RunSettings:
    """What a run was asked to do; everything here except UNFINGERPRINTED is part of the resume fingerprint
    (`batch_tokens` and `window_rows` as resolved for the provider)."""

    query_col: str = "query"
    candidate_col: str = "candidate"
    score_col: str = "score"
    on_null: str = "error"
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    window_rows: int = DEFAULT_WINDOW_ROWS
    prefetch_workers: int = 1  # windows tokenized at once, ahead of the one being scored
    documents_col: str | None = None  # listwise input: each row a query and a list of documents
    labels_col: str | None = None
    rank_col: str = "ranks"
    max_documents: int = DEFAULT_MAX_DOCUMENTS

    @property
    def text_col(self) -> str:
        """The column holding the candidates: documents for listwise input."""
        return self.documents_col or self.candidate_col

    @property
    def windows(self) -> WindowSpec:
        return WindowSpec(
            self.query_col,
            self.candidate_col,
            self.window_rows,
            self.documents_col,
            self.labels_col,
            self.max_documents,
        )


@dataclass
class Prepared:
    """A window and what its scoring needs, worked out in the reader thread.

    `rows`: the scorable rows (no null text); `keys`: their pair keys; `reused`: which of them take a score
    from `--reuse` (`reused_scores`); `unique`: positions (in `rows`) of the first occurrence of each other
    key, in input order, whose tokens are `encoded`; `inverse`: for each non-reused row, its entry in
    `unique`. `encoded` is None when the window was committed by an earlier, interrupted run.
    """

    window: Window
    rows: np.ndarray
    keys: np.ndarray
    reused: np.ndarray
    reused_scores: np.ndarray
    unique: np.ndarray
    inverse: np.ndarray
    encoded: EncodedPairs | None


def prefetch_workers(provider: str) -> int:
    """Threads tokenizing the next windows by default. On CUDA one per core, up to MAX_PREFETCH_WORKERS, so
    that the tokenizer keeps up with the GPU. On the CPU one, as before: ONNX Runtime already uses every
    core, and a second worker showed no gain (MiniLM int8, 2000 pairs, 2 AMD EPYC cores shared with other
    jobs, 3 alternated rounds: median 88 pairs/s with one worker, 77 with two; the noise is larger than
    either difference)."""
    return min(default_threads(), MAX_PREFETCH_WORKERS) if provider == CUDA else 1


def fingerprint(
    inputs: list[InputFile], model: LoadedModel, settings: RunSettings, reuse: list[InputFile]
) -> dict[str, Any]:
    """Identity of a run for resuming: same inputs, same variant, same batching, same reused outputs."""
    fields = {k: v for k, v in vars(settings).items() if k not in UNFINGERPRINTED}
    return {
        "inputs": [source.fingerprint() for source in inputs],
        "model_sha256": model.sha256,
        "precision": model.precision,
        "settings": fields,
        "reuse": [source.fingerprint() for source in reuse],
    }


def output_schema(inputs: list[InputFile], model: LoadedModel, settings: RunSettings) -> pa.Schema:
    """The inputs' schema plus the score column; its metadata records what scored it (for `--reuse`, `group`)."""
    schema = inputs[0].schema
    columns = {"query": settings.query_col, "score": settings.score_col}
    if settings.documents_col is None:
        schema = schema.append(pa.field(settings.score_col, pa.float32()))
        columns["candidate"] = settings.candidate_col
    else:
        schema = schema.append(pa.field(settings.score_col, pa.list_(pa.float32())))
        schema = schema.append(pa.field(settings.rank_col, pa.list_(pa.int32())))
        columns["documents"] = settings.documents_col
    identity = {**model.identity, "artifact": str(model.directory.resolve())}
    recorded = output_metadata(identity, columns, model.manifest.source.get("threshold"))
    return schema.with_metadata({**(schema.metadata or {}), **recorded})


def prepare_window(
    window: Window, model: LoadedModel, settings: RunSettings, path: Path, committed: bool, previous: ScoreIndex
) -> Prepared:
    """Keys, reused scores, in-window duplicates and tokens of a window (no tokens when it is committed)."""
    scorable = np.ones(len(window.queries), dtype=bool)
    if window.null_rows or window.null_lists:
        if settings.on_null == "error" and not committed:
            raise InputError(null_message(window, path, settings.query_col, settings.text_col))
        scorable[window.null_rows] = False
    rows = np.flatnonzero(scorable)
    keys = pair_keys([window.queries[i] for i in rows], [window.candidates[i] for i in rows])
    if committed:
        empty = np.empty(0, dtype=np.int64)
        return Prepared(window, rows, keys, np.zeros(len(rows), bool), np.empty(0, np.float32), empty, empty, None)
    reused, reused_scores = previous.get(keys)
    todo = np.flatnonzero(~reused)
    _, first, inverse = np.unique(keys[todo], return_index=True, return_inverse=True)
    order = np.argsort(first)  # first occurrences in input order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    unique = todo[first[order]]
    texts = rows[unique]
    encoded = model.tokenizer.encode([window.queries[i] for i in texts], [window.candidates[i] for i in texts])
    return Prepared(window, rows, keys, reused, reused_scores, unique, rank[inverse.reshape(-1)], encoded)


def _preparer(
    inputs: list[InputFile],
    model: LoadedModel,
    settings: RunSettings,
    done: Callable[[WindowKey], bool],
    previous: ScoreIndex,
) -> Callable[[Window], Prepared]:
    """`prepare_window` for a window of `inputs` (called from the prefetch threads: it only reads
    `done` and `previous`)."""

    def prepare(window: Window) -> Prepared:
        path = inputs[window.file_index].path
        return prepare_window(window, model, settings, path, done(window.key), previous)

    return prepare


def progress_bar(enabled: bool, provider: str = "") -> Progress:
    """The scoring progress bar both engines show (pairs, pairs/s, ETA)."""
    return Progress(
        TextColumn(f"scoring on {provider}" if provider else "scoring"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} pairs"),
        TextColumn("{task.fields[rate]:,.0f} pairs/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


@dataclass
class Counts:
    """Rows by what happened to them."""

    resumed: int = 0
    resumed_pairs: int = 0
    reused: int = 0
    deduplicated: int = 0


def _score_window(
    item: Prepared, model: LoadedModel, settings: RunSettings, seen: ScoreIndex, counts: Counts
) -> tuple[np.ndarray, Stats]:
    """Scores of a window's scorable rows: reused, copied from an identical pair scored earlier, or computed."""
    assert item.encoded is not None
    unique_keys = item.keys[item.unique]
    known, unique_scores = seen.get(unique_keys)  # identical pairs in earlier windows
    fresh = np.flatnonzero(~known)
    scores, stats = model.score_encoded(item.encoded.subset(fresh), settings.batch_tokens)
    unique_scores[fresh] = scores
    seen.add(unique_keys[fresh], scores)
    result = np.where(item.reused, item.reused_scores, np.float32(0))
    result[~item.reused] = unique_scores[item.inverse]
    counts.reused += int(item.reused.sum())
    counts.deduplicated += len(item.inverse) - len(fresh)
    return result, stats


@dataclass
class Scored:
    """A scored window: its output table, flat scores and which pairs were scored, and its counters."""

    table: pa.Table
    scores: np.ndarray
    scored: np.ndarray
    stats: Stats


def score_window(
    item: Prepared, model: LoadedModel, settings: RunSettings, schema: pa.Schema, seen: ScoreIndex, counts: Counts
) -> Scored:
    """Score a prepared window and build its rows of the output (the part file committed for it)."""
    scores, stats = _score_window(item, model, settings, seen, counts)
    window = item.window
    full = np.zeros(len(window.queries), dtype=np.float32)
    full[item.rows] = scores
    scored = np.zeros(len(window.queries), dtype=bool)
    scored[item.rows] = True
    table = pa.Table.from_batches([window.batch], schema=window.batch.schema)
    score_field = schema.field(settings.score_col)
    if window.offsets is None:
        table = table.append_column(score_field, pa.array(full, pa.float32(), mask=~scored))
    else:
        score_lists, rank_lists = list_columns(window, full, scored)
        table = table.append_column(score_field, score_lists)
        table = table.append_column(schema.field(settings.rank_col), rank_lists)
    digest = f"{len(item.keys)}:{content_digest(item.keys, scores):016x}".encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), DIGEST_KEY: digest})
    return Scored(table, full, scored, stats)


def report(
    inputs: list[InputFile],
    model: LoadedModel,
    output: Path,
    settings: RunSettings,
    reuse: list[InputFile],
    stats: Stats,
    counts: Counts,
    pairs: int,
    seconds: float,
) -> dict[str, Any]:
    """The run report (`--report`)."""
    total = sum(source.num_rows for source in inputs)
    return {
        "output": str(output),
        "rows": total,
        "rows_resumed": counts.resumed,
        "pairs_scored": stats.pairs,
        "pairs_reused": counts.reused,
        "pairs_deduplicated": counts.deduplicated,
        "pairs": pairs,
        "null_pairs": pairs - stats.pairs - counts.reused - counts.deduplicated - counts.resumed_pairs,
        "seconds": round(seconds, 3),
        "pairs_per_s": round(stats.pairs / seconds, 2) if seconds else None,
        "tokens": stats.tokens,
        "padded_tokens": stats.padded_tokens,
        "padding_efficiency": round(stats.padding_efficiency, 4),
        "truncated_pairs": stats.truncated,
        "batches": stats.batches,
        "precision": model.precision,
        "provider": model.onnx.provider,
        "threads": model.onnx.threads,
        "prefetch_workers": settings.prefetch_workers,
        "model_sha256": model.sha256,
        "inputs": [str(source.path) for source in inputs],
        "reuse": [str(source.path) for source in reuse],
        "settings": {k: v for k, v in vars(settings).items() if k not in UNFINGERPRINTED},
    }


@dataclass
class RunJob:
    """One `scorer run`, as both engines take it: the inputs, the loaded variant, the output and the settings;
    `restart` discards saved progress; `previous` holds the scores of `reuse` (earlier outputs of this variant)."""

    inputs: list[InputFile]
    model: LoadedModel
    output: Path
    settings: RunSettings
    restart: bool = False
    show_progress: bool = True
    reuse: list[InputFile] = field(default_factory=list)
    previous: ScoreIndex = field(default_factory=ScoreIndex)

    def staged(self) -> StagedOutput:
        """The output's staging directory, proven to belong to this job (or refused)."""
        fingerprinted = fingerprint(self.inputs, self.model, self.settings, self.reuse)
        return StagedOutput(self.output, fingerprinted, restart=self.restart)


def run(job: RunJob) -> dict[str, Any]:
    """Score every row of the job's inputs into its output; returns the run report.

    Pairs found in `job.previous` are not scored again, nor is a pair identical to one met earlier in this run.
    """
    inputs, model, output, settings, reuse = job.inputs, job.model, job.output, job.settings, job.reuse
    staged = job.staged()
    schema = output_schema(inputs, model, settings)
    total = sum(source.num_rows for source in inputs)
    stats, counts, seen = Stats(), Counts(), ScoreIndex()
    quality = RankingQuality() if settings.labels_col else None
    pairs = 0
    keys: list[WindowKey] = []
    start = time.perf_counter()
    prepare = _preparer(inputs, model, settings, staged.done, job.previous)
    workers = settings.prefetch_workers
    with (
        progress_bar(job.show_progress, model.onnx.provider) as progress,
        prefetched(iter_windows(inputs, settings.windows), prepare, workers, depth=workers + 1) as prepared,
    ):
        task = progress.add_task("score", total=total, rate=0.0)
        for item in _stopping_on_bad_input(prepared, staged):
            window = item.window
            keys.append(window.key)
            pairs += len(window.queries)
            if item.encoded is None:
                counts.resumed += window.batch.num_rows
                counts.resumed_pairs += len(window.queries)
                committed = staged.scores(window.key, settings.score_col)
                seen.add(item.keys, committed[item.rows])  # identical pairs later on are copied, as before
                if quality is not None:
                    quality.add(window, committed, ~np.isnan(committed))
            else:
                done = score_window(item, model, settings, schema, seen, counts)
                if quality is not None:
                    quality.add(window, done.scores, done.scored)
                staged.commit(window.key, done.table)
                stats.add(done.stats)
            elapsed = time.perf_counter() - start
            progress.update(task, advance=window.batch.num_rows, rate=stats.pairs / elapsed if elapsed else 0.0)
    staged.finalize(schema, keys)
    result = report(inputs, model, output, settings, reuse, stats, counts, pairs, time.perf_counter() - start)
    result |= {"discarded": staged.discarded} if staged.discarded else {}
    return {**result, **({"ranking": quality.report()} if quality is not None else {})}


def _stopping_on_bad_input(items: Iterator[Prepared], staged: StagedOutput) -> Iterator[Prepared]:
    """The prepared windows; bad input met on the way is recorded in the staging directory before it stops the run."""
    try:
        yield from items
    except InputError as exc:
        staged.stopped_on_bad_input(str(exc))
        raise
