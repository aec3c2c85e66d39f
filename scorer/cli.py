"""`scorer run INPUT... -m ARTIFACT_DIR -o OUTPUT.parquet`."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType

import click
from click.core import ParameterSource

from scorer.artifact import SIDES, load_manifest
from scorer.batching import CPU_PROFILE, CUDA_PROFILE
from scorer.flags import FiniteFloat
from scorer.model import MAX_BATCH_TOKENS, MAX_WINDOW_ROWS, LoadedModel
from scorer.output import OutputLock, staging_dir
from scorer.paths import cache_dir, check_distinct, check_file_target, write_text_atomic
from scorer.precision import PROBE_PAIRS, TimedProbe
from scorer.precision import choose as choose_precision
from scorer.reader import ON_NULL, InputFile, check_no_nulls, detect_documents, open_inputs, resolve_inputs
from scorer.record_text import as_trained
from scorer.reuse import load_previous, recorded_precision
from scorer.runner import MAX_PREFETCH_WORKERS, RunJob, RunSettings
from scorer.runner import prefetch_workers as prefetch_workers_for
from scorer.runner import run as run_job
from scorer.session import DEFAULT_GPU_MEM_LIMIT
from scorer.variants import PRECISIONS
from scorer.windows import WindowSpec, first_pairs

DEFAULTS = RunSettings()  # the flags show and use the settings' own defaults


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _default_score_col(files: list[Path], documents_col: str | None) -> str:
    """`score`, or for lists `scores`, unless the input has that column already (the seed's listwise data keeps
    its labels in `scores`): then `predicted_scores`, said on stderr."""
    if not documents_col:
        return "score"
    if files and "scores" in InputFile.describe(files[0]).schema.names:
        click.echo(
            "the input has a 'scores' column: the scores go to 'predicted_scores' (or give --score-col)", err=True
        )
        return "predicted_scores"
    return "scores"


def _text_as_trained(artifact: Path, query_col: str, candidate_col: str) -> tuple[str, str]:
    """The text specs of the run: as the model was trained (its manifest's source.text) unless the user gave
    other ones, which is a usage error (exit 2): a model scores text built as it was trained on."""
    context = click.get_current_context()
    given = [side for side in SIDES if context.get_parameter_source(f"{side}_col") is not ParameterSource.DEFAULT]
    trained = load_manifest(artifact).source.get("text")
    specs, problem = as_trained(trained, {"query": query_col, "candidate": candidate_col}, given)
    if problem:
        raise click.UsageError(problem)
    return specs["query"], specs["candidate"]


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", "artifact", required=True, type=click.Path(path_type=Path), help="Artifact directory.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output Parquet file.")
@click.option(
    "--query-col",
    default=DEFAULTS.query_col,
    show_default=True,
    help="Query text column, or columns joined by a space (title,brand). A model from `scorer train` builds it "
    "as it was trained: the default is then its columns, and other ones are refused.",
)
@click.option(
    "--candidate-col", default=DEFAULTS.candidate_col, show_default=True, help="Candidate text: as --query-col."
)
@click.option(
    "--documents-col",
    default=None,
    help="Listwise input: a list-of-strings column of documents for each row's query [detected: 'documents' when "
    "the candidate column is absent].",
)
@click.option("--labels-col", default=None, help="Listwise input: relevance labels aligned with the documents.")
@click.option(
    "--max-documents",
    type=click.IntRange(min=1, max=MAX_WINDOW_ROWS),
    default=DEFAULTS.max_documents,
    show_default=True,
    help="Listwise input: most documents a row may hold.",
)
@click.option(
    "--score-col",
    default=None,
    help="Name of the added score column [score; scores for lists, predicted_scores where the input has scores].",
)
@click.option(
    "--rank-col", default=DEFAULTS.rank_col, show_default=True, help="Listwise input: name of the added ranks."
)
@click.option(
    "--precision",
    type=click.Choice(["auto", *PRECISIONS]),
    default="auto",
    show_default=True,
    help="auto: the fastest variant whose gate passed on this machine (fp16 on CUDA; on CPU by a cached timed probe).",
)
@click.option(
    "--batch-tokens",
    type=click.IntRange(min=8, max=MAX_BATCH_TOKENS),
    default=None,
    help=f"Padded tokens per batch [{CPU_PROFILE.batch_tokens} on CPU, {CUDA_PROFILE.batch_tokens} on CUDA].",
)
@click.option(
    "--window-rows",
    type=click.IntRange(min=1, max=MAX_WINDOW_ROWS),
    default=None,
    help=f"Rows read, sorted and committed together [{CPU_PROFILE.window_rows} on CPU, "
    f"{CUDA_PROFILE.window_rows} on CUDA].",
)
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help="ONNX Runtime threads [all cores].")
@click.option(
    "--prefetch-workers",
    type=click.IntRange(min=1, max=64),
    default=None,
    help=f"Windows tokenized at once ahead of scoring [1 on CPU; on CUDA one per core, at most {MAX_PREFETCH_WORKERS}].",
)
@click.option(
    "--gpu-memory",
    type=FiniteFloat(min=0.25, max=4096),
    default=DEFAULT_GPU_MEM_LIMIT / (1 << 30),
    show_default=True,
    help="Most GiB the CUDA memory arena may take.",
)
@click.option(
    "--on-null",
    type=click.Choice(ON_NULL),
    default=DEFAULTS.on_null,
    show_default=True,
    help="error: stop naming the row; null: keep the row with a null score.",
)
@click.option(
    "--reuse",
    multiple=True,
    help="Earlier outputs of this artifact variant (files, directories or globs; repeatable): pairs with the "
    "same texts take their score instead of being scored again.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process; ray: a pool of Ray actors (pip install -e '.[ray]').",
)
@click.option("--address", default=None, help="Ray cluster address [a local Ray instance].")
@click.option("--workers", type=click.IntRange(min=1, max=4096), default=2, show_default=True, help="Ray actors.")
@click.option(
    "--threads-per-worker", type=click.IntRange(min=1, max=1024), default=1, show_default=True, help="Per Ray actor."
)
@click.option("--restart", is_flag=True, help="Discard progress saved by an earlier interrupted run.")
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write a JSON run report here.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [on when stderr is a terminal].")
def run(
    inputs: tuple[str, ...],
    artifact: Path,
    output: Path,
    query_col: str,
    candidate_col: str,
    documents_col: str | None,
    labels_col: str | None,
    max_documents: int,
    score_col: str | None,
    rank_col: str,
    precision: str,
    batch_tokens: int | None,
    window_rows: int | None,
    threads: int | None,
    prefetch_workers: int | None,
    gpu_memory: float,
    on_null: str,
    reuse: tuple[str, ...],
    engine: str,
    address: str | None,
    workers: int,
    threads_per_worker: int,
    restart: bool,
    report: Path | None,
    progress: bool | None,
) -> None:
    """Score (query, candidate) pairs from Parquet INPUTS (files, directories or globs) into OUTPUT.

    The output holds every input column, in input order, plus a float32 score. Listwise input (a query
    and a list of documents a row) gets a list of scores and of ranks instead. An interrupted run resumes
    when the same command is run again.
    """
    files = resolve_inputs(inputs)
    reused_files = resolve_inputs(reuse) if reuse else []
    specs = (*inputs, *reuse)
    reads = [*files, *reused_files, *(Path(spec) for spec in specs if Path(spec).is_dir()), artifact, cache_dir()]
    check_distinct({"-o/--output": output, "--report": report})
    check_file_target(output, reads, "-o/--output")
    if report is not None:
        check_file_target(report, reads, "--report")
    if engine == "ray":
        from scorer.ray_engine import preflight

        if problem := preflight(address, workers, threads_per_worker):
            raise click.UsageError(problem)
    query_col, candidate_col = _text_as_trained(artifact, query_col, candidate_col)
    documents_col = documents_col or detect_documents(files[0], candidate_col) if files else documents_col
    if labels_col and not documents_col:
        raise click.BadParameter("labels need listwise input (--documents-col)", param_hint="--labels-col")
    score_col = score_col or _default_score_col(files, documents_col)
    if documents_col and score_col == rank_col:
        raise click.BadParameter(
            f"{score_col!r} is also the --rank-col; the scores and ranks need two names", param_hint="--score-col"
        )
    sources = open_inputs(
        files, query_col, candidate_col, score_col, documents_col, labels_col, rank_col if documents_col else None
    )
    if on_null == "error":
        check_no_nulls(sources, (query_col, documents_col or candidate_col))
    spec = WindowSpec(query_col, candidate_col, PROBE_PAIRS, documents_col, labels_col, max_documents)
    # auto's probe, if it runs, times the run's own first pairs
    probe = TimedProbe(artifact, threads, lambda: first_pairs(sources, spec, PROBE_PAIRS))
    choice = choose_precision(precision, artifact, threads, probe, prefer=recorded_precision(reused_files))
    click.echo(f"precision {choice.precision}: {choice.reason}", err=True)
    model = probe.take(choice.precision) or LoadedModel.load(
        artifact, choice.precision, threads, gpu_mem_limit=int(gpu_memory * (1 << 30))
    )
    profile = model.profile
    other_variants = "rescore" if precision == "auto" else "refuse"
    reused_scores, warnings = load_previous(reused_files, model.identity, other_variants=other_variants)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    reused_sources = [InputFile.describe(path) for path in reused_files]
    settings = RunSettings(
        query_col=query_col,
        candidate_col=candidate_col,
        score_col=score_col,
        on_null=on_null,
        batch_tokens=batch_tokens or profile.batch_tokens,
        window_rows=window_rows or profile.window_rows,
        prefetch_workers=prefetch_workers or prefetch_workers_for(model.onnx.provider),
        documents_col=documents_col,
        labels_col=labels_col,
        rank_col=rank_col,
        max_documents=max_documents,
    )
    lock = OutputLock(output)
    previous_handler = signal.signal(signal.SIGTERM, _terminate)
    try:
        show = sys.stderr.isatty() if progress is None else progress
        job = RunJob(sources, model, output, settings, restart, show, reused_sources, reused_scores)
        if engine == "ray":
            from scorer.ray_engine import run as run_on_ray

            result = run_on_ray(job, address, workers, threads_per_worker)
        else:
            result = run_job(job)
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        raise click.ClickException(
            f"interrupted ({name}); progress is saved in {staging_dir(output)}: run the same command again to resume"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        lock.release()
    result["precision_choice"] = choice.to_dict()
    if report is not None:
        write_text_atomic(report, json.dumps(result, indent=2) + "\n", f" (the scores were written to {output})")
    click.echo(
        f"scored {result['pairs_scored']:,} pairs, reused {result['pairs_reused']:,}, deduplicated "
        f"{result['pairs_deduplicated']:,} ({result['rows']:,} rows) in {result['seconds']:.1f}s: "
        f"{result['pairs_per_s'] or 0:,.1f} pairs/s, {result['precision']} on {result['provider']}, "
        f"padding efficiency {result['padding_efficiency']:.2f} -> {output}",
        err=True,
    )
