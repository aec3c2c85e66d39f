"""`python -m benchmarks.reproduce --data ../shared/data` (or `make bench`): every committed report, in one go.

    quality  train MiniLM on pairs/*/train, export it (calibrated on the valid splits), F1 per dataset
    minilm   throughput of that checkpoint and artifact on abt-buy's test titles
    mmbert   mmBERT-small architecture (random weights), each int8 activation scheme, 300 test titles
    scaling  `scorer run` at 10k, 100k and 1M rows with the tiny mmBERT (the pipeline's cost)

Each step is the command a person would type (printed before it runs); models and artifacts go under
`--work`, reports under `--results`. On 2 quiet cores the whole run took 55 minutes.
Without the data folder it says so and exits 0.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click

STEPS = ("quality", "minilm", "mmbert", "scaling")
# Random weights: no quality gate can apply (bf16 is gated like int8).
LOOSE_GATES = [
    "--int8-min-spearman",
    "-1",
    "--int8-max-flip-rate",
    "1",
    "--bf16-min-spearman",
    "-1",
    "--bf16-max-flip-rate",
    "1",
]
RANDOM_WEIGHTS = (
    "Random weights: speed does not depend on weight values, so the speed figures are the real model's cost; "
    "the quality targets cannot apply (a random model's scores sit in a narrow band, so Spearman measures noise). "
)


def _command(log: Callable[[str], None]) -> Callable[..., None]:
    def run(*args: object) -> None:
        command = [str(arg) for arg in args]
        log("$ python -m " + shlex.join(command))
        subprocess.run([sys.executable, "-m", *command], check=True)

    return run


def _export(run: Callable[..., None], checkpoint: Path, artifact: Path, activations: str) -> None:
    run(
        "scorer.cli",
        "export",
        checkpoint,
        "-o",
        artifact,
        "--precisions",
        "fp32,int8",
        "--int8-activations",
        activations,
        "--force",
        *LOOSE_GATES,
    )


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/bench"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=Path("benchmarks/results"), show_default=True)
@click.option(
    "--steps", default=",".join(STEPS), show_default=True, help="Comma-separated subset, run in the order above."
)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Throughput rounds.")
def main(data: Path, work: Path, results: Path, steps: str, repeats: int) -> None:
    """Reproduce the quality, throughput and scaling reports from a fresh clone."""
    chosen = [step.strip() for step in steps.split(",") if step.strip()]
    if unknown := set(chosen) - set(STEPS):
        raise click.BadParameter(f"unknown step(s) {', '.join(sorted(unknown))}", param_hint="--steps")
    test_titles = data / "pairs" / "abt-buy" / "test.parquet"
    if not test_titles.is_file():
        click.echo(f"skipped: no product data at {data} (give --data)", err=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    run = _command(lambda line: click.echo(line, err=True))
    quality = work / "quality"
    if "quality" in chosen:
        run("benchmarks.model_quality", "--data", data, "--out", results / "quality", "--work", quality)
    if "minilm" in chosen:
        run(
            "benchmarks.throughput",
            *("--data", test_titles, "--checkpoint", quality / "checkpoint", "--artifact", quality / "artifact"),
            *("--out", results / "minilm", "--repeats", repeats, "--work", work / "throughput-minilm"),
            *("--name", "MiniLM-L6 product cross-encoder (trained)"),
            "--note",
            "Checkpoint and artifact from `python -m benchmarks.model_quality` (trained on every pairs/*/train "
            "split; exported with the default gates, calibrated on 250 pairs of each valid split).",
        )
    if "mmbert" in chosen:
        checkpoint = work / "mmbert"
        if not (checkpoint / "config.json").is_file():
            run("benchmarks.mmbert_arch", "-o", checkpoint)
        for activations in ("per-tensor", "per-token-mixed", "per-token"):
            artifact = work / f"mmbert-{activations}"
            _export(run, checkpoint, artifact, activations)
            run(
                "benchmarks.throughput",
                *("--data", test_titles, "--checkpoint", checkpoint, "--artifact", artifact, "--rows", 300),
                *("--out", results / f"mmbert-small-arch-{activations}", "--repeats", repeats),
                *("--work", work / "throughput-mmbert", "--name", f"mmBERT-small architecture, int8 {activations}"),
                "--note",
                RANDOM_WEIGHTS + f"Artifact: `scorer export --int8-activations {activations}` with the int8 gates "
                "loosened (random weights cannot pass them). The trained MiniLM's gate picks per-token-mixed.",
            )
    if "scaling" in chosen:
        tiny, artifact = work / "mmbert-tiny", work / "mmbert-tiny-artifact"
        if not (tiny / "config.json").is_file():
            run("benchmarks.mmbert_arch", "-o", tiny, "--tiny")
        _export(run, tiny, artifact, "auto")
        run(
            "benchmarks.scaling",
            *("--artifact", artifact, "--out", results / "scaling", "--work", work / "scaling"),
            "--note",
            "Model: the mmBERT-small architecture shrunk to 2 layers, hidden 32 (`python -m benchmarks.mmbert_arch "
            "--tiny`), int8, so that a million rows fit in minutes: this measures the pipeline (Parquet, "
            "tokenization, batching, output), not the encoder. With MiniLM, 1M rows take about an hour on 2 cores.",
        )


if __name__ == "__main__":
    main()
