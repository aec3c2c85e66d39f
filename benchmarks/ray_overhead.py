"""`python -m benchmarks.ray_overhead`: the Ray engine's cost against the local engine at equal cores.

    python -m benchmarks.ray_overhead --data ../shared/data --out benchmarks/results/ray

`--pairs` distinct real product-title pairs (every `pairs/*/*.parquet` split) are scored by a fresh process
each: the local engine with 2 threads, the Ray engine with 2 actors x 1 thread (a local Ray instance, started
by the run and counted in its wall time), and with 1 actor x 1 thread (the per-worker throughput that sizes a
cluster). Runs alternate over `--rounds`; outputs must be identical. The model is the one of
`benchmarks.nightly` (`--artifact`, else MiniLM with an untrained head).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pyarrow.parquet as pq

from benchmarks.child import run_child
from benchmarks.harness import header, report_head, write_report
from benchmarks.nightly import _artifact, _nights

NAME = "ray"
TARGET_OVERHEAD = 0.10
NIGHT_PAIRS, NIGHT_HOURS = 100_000_000, 6
CONFIGS = {
    "local, 2 threads": ["--threads", "2"],
    "ray, 2 actors x 1 thread": ["--engine", "ray", "--workers", "2", "--threads-per-worker", "1"],
    "ray, 1 actor x 1 thread": ["--engine", "ray", "--workers", "1", "--threads-per-worker", "1"],
}


def _score(source: Path, artifact: Path, output: Path, extra: list[str]) -> dict[str, Any]:
    report = output.with_suffix(".json")
    output.unlink(missing_ok=True)
    argv = ["scorer", "run", str(source), "-m", str(artifact), "-o", str(output), "--report", str(report), "--restart"]
    argv += extra
    run = run_child(argv, output.with_suffix(".log"))
    return {**json.loads(report.read_text()), "wall_s": run.seconds}


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        *report_head("Ray engine overhead at equal cores", result),
        (
            f"{result['pairs']:,} distinct real title pairs, "
            f"MiniLM-size model, {result['precision']}; each run a fresh process, wall time end to end (Ray start-up "
            "included); best of the rounds (the cores were shared: noise only adds time)."
        ),
        "",
        "| configuration | wall s (best) | pairs/s | rounds (s) |",
        "|---|---:|---:|---|",
    ]
    for name, runs in result["runs"].items():
        walls = [r["wall_s"] for r in runs]
        best = min(walls)
        lines.append(
            f"| {name} | {best:.1f} | {result['pairs'] / best:,.0f} | {', '.join(f'{w:.1f}' for w in walls)} |"
        )
    overhead = result["overhead"]
    met = "met" if overhead <= TARGET_OVERHEAD else "**missed**"
    per_worker = result["per_worker_pairs_per_s"]
    lines += [
        "",
        (
            f"Overhead of the Ray engine (2 actors x 1 thread) over the local engine (2 threads): **{overhead:+.1%}** "
            f"(target <= {TARGET_OVERHEAD:.0%}: {met}). Outputs identical to the local engine's: {result['identical']}."
        ),
        "",
        "## Extrapolation",
        "",
        (
            f"A night of {NIGHT_PAIRS:,} pairs in {NIGHT_HOURS} hours needs {NIGHT_PAIRS / (NIGHT_HOURS * 3600):,.0f} "
            "pairs/s in all."
        ),
        "",
        "| worker | pairs/s per worker (measured here) | workers for the night |",
        "|---|---:|---:|",
        (
            f"| 1 CPU core, {result['precision']} (this machine) | {per_worker:,.0f} | "
            f"{NIGHT_PAIRS / (NIGHT_HOURS * 3600) / per_worker:,.0f} |"
        ),
        "| 1 GPU, fp16 | not measured (no GPU was lent to this work) | - |",
        "",
        (
            "Wall time per worker includes Ray and model start-up, so on a night's volume the per-worker rate is a "
            "little higher than measured here."
        ),
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--artifact", type=click.Path(path_type=Path), default=None, help="[MiniLM, untrained head]")
@click.option("--pairs", type=int, default=50_000, show_default=True)
@click.option("--rounds", type=int, default=2, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("benchmarks/results/ray"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/bench/ray"), show_default=True)
def main(data: Path, artifact: Path | None, pairs: int, rounds: int, out: Path, work: Path) -> None:
    """Time the local engine and the Ray engine on the same pairs; check the outputs are identical."""
    work.mkdir(parents=True, exist_ok=True)
    source, _ = _nights(data, pairs, 0.0, work)
    artifact = artifact or _artifact(work)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    identical = True
    for i in range(rounds):
        names = list(CONFIGS) if i % 2 == 0 else list(reversed(CONFIGS))
        for name in names:
            output = work / f"scores-{list(CONFIGS).index(name)}.parquet"
            runs[name].append(_score(source, artifact, output, CONFIGS[name]))
            click.echo(f"round {i + 1}, {name}: {runs[name][-1]['wall_s']:.1f} s", err=True)
        tables = [pq.read_table(work / f"scores-{k}.parquet") for k in range(len(CONFIGS))]
        identical = identical and all(t.equals(tables[0]) for t in tables)
    # Best of the rounds: on a shared machine noise only ever adds time.
    local = min(r["wall_s"] for r in runs["local, 2 threads"])
    ray2 = min(r["wall_s"] for r in runs["ray, 2 actors x 1 thread"])
    ray1 = min(r["wall_s"] for r in runs["ray, 1 actor x 1 thread"])
    first = runs["local, 2 threads"][0]
    result = {
        **header("benchmarks.ray_overhead"),
        "pairs": first["rows"],
        "precision": first["precision"],
        "runs": runs,
        "overhead": ray2 / local - 1,
        "per_worker_pairs_per_s": first["rows"] / ray1,
        "identical": identical,
    }
    write_report(out, NAME, result, _markdown(result))
    click.echo(_markdown(result))


if __name__ == "__main__":
    main()
