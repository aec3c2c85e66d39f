"""`python -m benchmarks.scaling`: time and peak memory of `scorer run` as the input grows.

    python -m benchmarks.scaling --artifact ART --out benchmarks/results/scaling [--rows 10000 --rows 100000 ...]

Inputs come from the sample catalogue (`samples.catalogue.sample_pairs`, up to 100k distinct pairs,
repeated beyond that). Each size is one fresh `scorer run` process; the harness takes its wall time
and its own peak RSS. Expected: time linear in rows, memory flat (the run streams windows). A million
rows take about an hour with MiniLM on 2 cores, so use a tiny artifact for the large sizes
(`python -m benchmarks.mmbert_arch --tiny`) and say so with `--note`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from benchmarks.child import run_child
from benchmarks.harness import header, report_head, write_report
from benchmarks.inputs import catalogue_pairs
from scorer.artifact import load_manifest

DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
NAME = "scaling"


def describe_artifact(artifact: Path, precision: str) -> str:
    """Model type, size and the checkpoint's shape where its config is still on disk."""
    manifest = load_manifest(artifact)
    variant = manifest.variants[precision]
    size_mb = (artifact / variant.file).stat().st_size / 1e6
    text = f"{manifest.source.get('model_type', '?')} `{variant.file}` ({size_mb:,.1f} MB)"
    config_path = Path(manifest.source.get("checkpoint", "")) / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        text += f", {config['num_hidden_layers']} layers, hidden {config['hidden_size']}"
    return text


def measure(
    artifact: Path, sizes: list[int], precision: str, work: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """One `scorer run` per size, smallest first."""
    results = []
    for rows in sorted(sizes):
        input_path = catalogue_pairs(rows, work / f"input-{rows}.parquet")
        output, child_report = work / f"output-{rows}.parquet", work / f"report-{rows}.json"
        argv = [sys.executable, "-m", "scorer", "run", str(input_path), "-m", str(artifact), "-o", str(output)]
        argv += ["--precision", precision, "--no-progress", "--report", str(child_report)]
        run = run_child(argv, work / f"run-{rows}.log")
        inner = json.loads(child_report.read_text())
        output.unlink()
        input_path.unlink()
        results.append(
            {
                "rows": rows,
                "seconds": run.seconds,
                "scoring_seconds": inner["seconds"],
                "pairs_per_s": rows / run.seconds,
                "us_per_row": run.seconds / rows * 1e6,
                "peak_rss_mb": run.peak_rss_mb,
                "tokens": inner["tokens"],
                "padding_efficiency": inner["padding_efficiency"],
            }
        )
        log(f"{rows:,} rows: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:,.0f} MB")
    return results


def markdown(result: dict[str, Any], chart: str) -> str:
    runs = result["runs"]
    lines = [
        *report_head("Scaling of `scorer run`", result),
        f"Model: {result['model']}, {result['precision']}; input: {result['input']}.",
        "",
    ]
    if result["note"]:
        lines += [result["note"], ""]
    lines += [
        "| rows | seconds | pairs/s | µs/row | peak RSS MB | padding eff. |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['rows']:,} | {r['seconds']:,.1f} | {r['pairs_per_s']:,.0f} | {r['us_per_row']:,.1f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['padding_efficiency']:.3f} |"
            for r in runs
        ),
        "",
        (
            f"Time per row, largest run / smallest: {result['time_per_row_ratio']:.2f} (1.00 = linear; start-up "
            f"weighs on small runs). Peak memory, largest / smallest: {result['memory_ratio']:.2f} (1.00 = flat)."
        ),
        "",
        f"![scaling]({chart})",
        "",
    ]
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    rows = [r["rows"] for r in runs]
    fig, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4))
    time_axis.loglog(rows, [r["seconds"] for r in runs], "o-", label="measured")
    per_row = runs[-1]["seconds"] / rows[-1]
    time_axis.loglog(rows, [n * per_row for n in rows], "--", color="gray", label="linear (through largest)")
    time_axis.set_xlabel("rows")
    time_axis.set_ylabel("seconds (whole process)")
    time_axis.legend()
    memory_axis.semilogx(rows, [r["peak_rss_mb"] for r in runs], "o-", color="tab:green")
    memory_axis.set_ylim(bottom=0)
    memory_axis.set_xlabel("rows")
    memory_axis.set_ylabel("peak RSS (MB)")
    fig.suptitle(f"scorer run {result['precision']}: {result['model']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.command()
@click.option("--artifact", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Results folder.")
@click.option("--rows", "sizes", multiple=True, type=click.IntRange(min=1), default=DEFAULT_ROWS, show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="int8", show_default=True)
@click.option("--note", default="", help="A line for the report (e.g. which model and why).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None, help="Scratch [temporary].")
def main(artifact: Path, out: Path, sizes: tuple[int, ...], precision: str, note: str, work: Path | None) -> None:
    """Time and peak memory of `scorer run` at each --rows, as Markdown, JSON and a PNG in OUT."""
    with tempfile.TemporaryDirectory(prefix="scaling-") as scratch:
        folder = work or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        runs = measure(artifact, list(sizes), precision, folder, lambda message: click.echo(message, err=True))
    result = {
        **header("benchmarks.scaling"),
        "model": describe_artifact(artifact, precision),
        "precision": precision,
        "input": "sample catalogue pairs (samples.catalogue.sample_pairs, seed 0; up to 100k distinct, repeated; row groups of 10k rows)",
        "note": note,
        "runs": runs,
        "time_per_row_ratio": runs[-1]["us_per_row"] / runs[0]["us_per_row"],
        "memory_ratio": runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"],
    }
    report = write_report(out, NAME, result, markdown(result, f"{NAME}.png"), lambda path: chart(result, path))
    click.echo(f"report {report}", err=True)


if __name__ == "__main__":
    main()
