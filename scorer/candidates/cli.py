"""`scorer candidates CATALOGUE... -o PAIRS.parquet --id-col ID --text-col TEXT`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress

from scorer.candidates.blocking import Steps, run_generators
from scorer.candidates.catalogue import read_catalogue
from scorer.candidates.embedder import Embedder, default_embedder_dir, is_embedder_dir, model_identity
from scorer.candidates.pairs import GENERATORS
from scorer.candidates.report import build_report, scoring_estimate, summary
from scorer.candidates.truth import blocking_quality, true_pair_keys
from scorer.candidates.writer import write_pairs
from scorer.errors import InputError
from scorer.flags import FiniteFloat
from scorer.output import OutputLock
from scorer.paths import cache_dir, check_distinct, check_file_target, write_text_atomic
from scorer.reader import resolve_inputs


def _generators(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(GENERATORS))
    if unknown or not names:
        raise click.BadParameter(f"choose among {', '.join(GENERATORS)} (got {value!r})", param_hint="--generators")
    return [name for name in GENERATORS if name in names]


def _embedder(directory: Path | None, model: str | None, threads: int | None) -> Embedder:
    """Load the ONNX embedder; export it from `model` (default all-MiniLM-L6-v2; torch needed once) where it
    does not exist yet."""
    directory = directory or default_embedder_dir(model)
    if directory.exists() and not is_embedder_dir(directory):
        raise InputError(f"{directory}: not an embedder directory (remove it, or give another --embedder)")
    if not directory.exists():
        click.echo(f"exporting {model or 'all-MiniLM-L6-v2'} to ONNX in {directory} (first use only)", err=True)
        try:
            from export.embedder import default_base_model, export_embedder  # torch, on first use only

            export_embedder(model or default_base_model(), directory)
        except ImportError as exc:
            raise click.ClickException(
                f"cannot export the embedder ({exc}): install the `torch` and `offline` extras, "
                "give an exported --embedder DIR, or skip embeddings with --generators lexical,keys,trigram"
            ) from None
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"--embedder-model {model}: cannot export it ({first})") from None
    loaded = Embedder(directory, threads)
    if model is not None and loaded.manifest.get("base_model") != model_identity(model):
        raise InputError(
            f"--embedder {directory} holds an embedder of {loaded.manifest.get('base_model')}, not of "
            f"--embedder-model {model} (give another --embedder directory)"
        )
    return loaded


@click.command()
@click.argument("catalogues", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output Parquet file of pairs.")
@click.option("--id-col", required=True, help="Record id column (string or integer, unique over all inputs).")
@click.option(
    "--text-col", required=True, help="Record text column (the title), or several joined: title,brand,model_no."
)
@click.option(
    "--k", type=click.IntRange(min=1), default=20, show_default=True, help="Candidates per record and generator."
)
@click.option(
    "--against",
    multiple=True,
    help="Link mode: pair CATALOGUES only with these records (repeatable; files, dirs, globs).",
)
@click.option(
    "--generators",
    "generators_spec",
    default=",".join(GENERATORS),
    show_default=True,
    help="Comma-separated subset of lexical,keys,embedding,trigram.",
)
@click.option(
    "--embedder",
    type=click.Path(path_type=Path),
    default=None,
    help="ONNX embedder directory; exported there from --embedder-model if missing [user cache].",
)
@click.option(
    "--embedder-model",
    default=None,
    help="Sentence-transformers model (directory or hub name) to embed with, e.g. a multilingual one "
    "[all-MiniLM-L6-v2, offline].",
)
@click.option("--truth", type=click.Path(path_type=Path), default=None, help="Parquet of (id, group): report recall.")
@click.option(
    "--pairs-per-s",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Scoring rate for the estimate [measured].",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Threads for the embedder and index [all cores]."
)
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write a JSON report here.")
@click.option("--progress/--no-progress", default=None, help="Progress bars [on when stderr is a terminal].")
def candidates(
    catalogues: tuple[str, ...],
    output: Path,
    id_col: str,
    text_col: str,
    k: int,
    against: tuple[str, ...],
    generators_spec: str,
    embedder: Path | None,
    embedder_model: str | None,
    truth: Path | None,
    pairs_per_s: float | None,
    threads: int | None,
    report: Path | None,
    progress: bool | None,
) -> None:
    """Propose the pairs of CATALOGUES (Parquet files, directories or globs) worth scoring.

    Writes query_id, candidate_id, query, candidate and generators: each unordered pair once, never a
    record with itself, at most k candidates per record from each generator.
    """
    start = time.perf_counter()
    generators = _generators(generators_spec)
    files = resolve_inputs(catalogues)
    against_files = resolve_inputs(against) if against else []
    reads = [*files, *against_files, *[Path(spec) for spec in (*catalogues, *against) if Path(spec).is_dir()]]
    reads += [path for path in (truth, embedder) if path is not None]
    reads += [cache_dir(), *([Path(embedder_model)] if embedder_model and Path(embedder_model).exists() else [])]
    check_distinct({"-o/--output": output, "--report": report})
    check_file_target(output, reads, "-o/--output")
    if report is not None:
        check_file_target(report, reads, "--report")
    click.get_current_context().with_resource(OutputLock(output))  # held until the command ends
    catalogue = read_catalogue(files, against_files, id_col, text_col)
    truth_keys = true_pair_keys(truth, catalogue) if truth else None
    model = (
        _embedder(embedder, embedder_model, threads) if "embedding" in generators and catalogue.possible_pairs else None
    )
    seconds = {"read": time.perf_counter() - start}
    show = sys.stderr.isatty() if progress is None else progress
    with Progress(console=Console(stderr=True), disable=not show, transient=True) as bars:
        blocking = run_generators(catalogue, generators, k, model, threads, Steps(bars))
    estimate = scoring_estimate(blocking, pairs_per_s)
    write_start = time.perf_counter()
    write_pairs(output, catalogue, blocking.pair_keys, blocking.mask)
    seconds["write"] = time.perf_counter() - write_start
    seconds["total"] = time.perf_counter() - start
    result = build_report(catalogue, blocking, generators, k, estimate, seconds)
    if truth_keys is not None:
        result.update(blocking_quality(truth_keys, blocking.pair_keys, blocking.mask, generators, len(catalogue)))
    if report is not None:
        write_text_atomic(report, json.dumps(result, indent=2) + "\n")
    click.echo(f"{summary(result)}\n-> {output}", err=True)
