"""Does a fine-tuned blocking embedder raise blocking recall on a catalogue it never saw? Leave one dataset out.

    python -m benchmarks.embedder_transfer --data ../shared/data --out benchmarks/results/candidates-embedder

For each pairs dataset X, `scorer train-embedder` fine-tunes all-MiniLM-L6-v2 (offline) on the positive pairs
of every split of the other datasets only (never a pair of X), in a fresh process; then `scorer candidates`
runs on X's catalogue exactly as `benchmarks.candidates` builds and runs it (k = 20, all four generators), once
with the pretrained embedder (the baseline, measured in the same run) and once with the fine-tuned one.
With `--more-k`, the fine-tuned blocking also runs at larger k (how far recall is from the target in pairs per
record), and every run splits its recall by where a true pair comes from: a hand-verified test-split positive, a
train/valid positive (derived from shared product identifiers), or the transitive closure alone. With `--audit N
--audit-dir DIR`, seeded samples of N missed and N found true pairs per dataset are written to DIR (CSV with
both titles and the pair's origin) for a person to judge; keep DIR outside the repository, the titles are the shared data's.
Writes `embedder_transfer.json` and `embedder_transfer.md`.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.candidates import (
    RECALL_TARGET,
    SPLITS,
    catalogue_titles,
    dataset_catalogue,
    ensure_embedder,
    found_pairs,
    labelled_recall,
    run_candidates,
)
from benchmarks.harness import header, report_head, write_report

MARKER = "train_embedder.json"


def train_without(
    name: str, folders: list[Path], models: Path, train_flags: list[str]
) -> tuple[Path, dict[str, Any], float]:
    """The embedder model trained on every dataset but `name` (reused where `models` already holds it);
    its training record and the training process's wall time (0 when reused)."""
    target = models / f"without-{name}"
    if (target / MARKER).is_file():
        return target, json.loads((target / MARKER).read_text()), 0.0
    files = [str(f / f"{split}.parquet") for f in folders if f.name != name for split in SPLITS]
    argv = [sys.executable, "-m", "scorer", "train-embedder", "-o", str(target), "--no-progress", *train_flags]
    for file in files:
        argv += ["--train", file]
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return target, json.loads((target / MARKER).read_text()), time.perf_counter() - start


ORIGINS = ("test", "train+valid", "transitive")


def true_pairs(truth: Path) -> set[tuple[str, str]]:
    """Every sorted id pair of one truth group."""
    groups: dict[str, list[str]] = {}
    for row in pq.read_table(truth).to_pylist():
        groups.setdefault(row["group"], []).append(row["id"])
    return {tuple(sorted((a, b))) for ids in groups.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}


def origin(pair: tuple[str, str], positives: dict[str, set[tuple[str, str]]]) -> str:
    """Where a true pair comes from: a test-split positive, a train/valid positive, or the closure alone."""
    if pair in positives["test"]:
        return "test"
    return "train+valid" if pair in positives["train"] | positives["valid"] else "transitive"


def recall_by_origin(
    true: set[tuple[str, str]], missed: set[tuple[str, str]], positives: Any
) -> dict[str, dict[str, float | int]]:
    """True pairs and recall per origin (test, train+valid, transitive)."""
    totals = {name: 0 for name in ORIGINS}
    misses = dict(totals)
    for pair in true:
        totals[origin(pair, positives)] += 1
    for pair in missed:
        misses[origin(pair, positives)] += 1
    return {
        name: {"pairs": totals[name], "recall": 1 - misses[name] / totals[name] if totals[name] else 1.0}
        for name in ORIGINS
    }


def measure(
    catalogue: Path, truth: Path, work: Path, k: int, embedder: Path, extra: list[str], positives: Any
) -> dict[str, Any]:
    """One `scorer candidates` run on a dataset catalogue, with labelled recall by split and recall by origin;
    the true pairs it missed and found are kept under `missed` and `found` (removed before the report is written)."""
    run = run_candidates(catalogue, truth, work, k, embedder, extra)
    found, titles, true = found_pairs(Path(run.pop("pairs_file"))), catalogue_titles(catalogue), true_pairs(truth)
    run["labelled"] = {
        "test": labelled_recall(found, positives["test"], titles),
        "all": labelled_recall(found, set().union(*positives.values()), titles),
    }
    run["missed"], run["found"] = true - found, true & found
    run["by_origin"] = recall_by_origin(true, run["missed"], positives)
    return run


def write_audit(
    path: Path,
    missed: set[tuple[str, str]],
    found: set[tuple[str, str]],
    titles: dict[str, str],
    positives: Any,
    size: int,
    seed: int = 0,
) -> None:
    """Seeded samples of `size` missed and `size` found true pairs, with both titles and each pair's origin, for a
    person to judge (the found ones tell how noisy the truth is where blocking succeeds)."""
    rng = random.Random(seed)
    samples = [(pair, "no") for pair in rng.sample(sorted(missed), min(size, len(missed)))]
    samples += [(pair, "yes") for pair in rng.sample(sorted(found), min(size, len(found)))]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left_id", "right_id", "found", "origin", "left_title", "right_title", "judgement"])
        for (a, b), was_found in samples:
            writer.writerow([a, b, was_found, origin((a, b), positives), titles[a], titles[b], ""])


def markdown(result: dict[str, Any]) -> str:
    """The report for people."""
    lines = [
        *report_head("Blocking with a fine-tuned embedder: leave one dataset out", result),
        (
            f"k = {result['k']}; generators lexical, keys, embedding, trigram. Training: `scorer train-embedder` "
            f"{' '.join(result['train_flags']) or '(defaults)'}: {result['training']}"
        ),
        "",
        "Each row's embedder never saw a pair of that dataset: it was trained on the positive pairs of every split",
        "of the other five. Baseline = the pretrained all-MiniLM-L6-v2, measured in the same run on the same catalogue.",
        "",
        (
            "| dataset | recall before | recall after | embedding alone before / after | pairs/record before / after "
            "| test-split positives before / after | training pairs | steps | train s | met (>= 0.95) |"
        ),
        "|---|---:|---:|---|---|---|---:|---:|---:|---|",
    ]
    for name, r in result["datasets"].items():
        b, a, t = r["baseline"], r["tuned"], r["training"]
        lines.append(
            f"| {name} | {b['blocking_recall']:.4f} | {a['blocking_recall']:.4f} "
            f"| {b['recall_by_generator']['embedding']:.3f} / {a['recall_by_generator']['embedding']:.3f} "
            f"| {b['pairs_per_record']} / {a['pairs_per_record']} "
            f"| {b['labelled']['test']['recall']:.4f} / {a['labelled']['test']['recall']:.4f} "
            f"| {t['pairs']:,} | {t['steps']} | {t['seconds']} "
            f"| {'yes' if a['blocking_recall'] >= RECALL_TARGET else '**NO**'} |"
        )
    lines += [
        "",
        "Recall = blocking recall over the true pairs (connected components of the positives), as in",
        "`benchmarks/results/candidates/candidates.md`; embedding alone = the embedding generator's own recall;",
        "train s = training and saving the model (CPU, 2 shared cores, so times vary). Measured, not predicted:",
        "rerun the command above to reproduce.",
    ]
    lines += [
        "",
        "## Recall by where a true pair comes from",
        "",
        "Test = the hand-verified test-split positives; train+valid = the positives derived from shared product",
        "identifiers; transitive = true pairs joined only through the connected components (no label of their own).",
        "",
        "| dataset | k | pairs/record | recall | test | train+valid | transitive |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for name, r in result["datasets"].items():
        for label, run in [
            (f"{result['k']} (pretrained)", r["baseline"]),
            (str(result["k"]), r["tuned"]),
            *r.get("tuned_at_k", {}).items(),
        ]:
            cells = " | ".join(
                f"{o['recall']:.4f} of {o['pairs']:,}" for o in (run["by_origin"][key] for key in ORIGINS)
            )
            lines.append(f"| {name} | {label} | {run['pairs_per_record']} | {run['blocking_recall']:.4f} | {cells} |")
    reused = [name for name, r in result["datasets"].items() if not r["training"]["process_seconds"]]
    if reused:
        lines += [
            "",
            f"Models of {', '.join(reused)} were reused from `--models` (trained there by an earlier run of this",
            "command with the same flags; their train s is that run's).",
        ]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="The shared data folder (with pairs/).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/candidates-embedder"))
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--models", type=Path, default=None, help="Keep (and reuse) the trained models here [temp].")
    parser.add_argument("--only", default="", help="Comma-separated datasets to measure [all].")
    parser.add_argument("--embedder", type=Path, default=None, help="Baseline ONNX embedder directory [user cache].")
    parser.add_argument("--more-k", default="", help="Comma-separated larger k to run the fine-tuned blocking at too.")
    parser.add_argument("--audit", type=int, default=0, help="Missed true pairs to sample per dataset for judging.")
    parser.add_argument("--audit-dir", type=Path, default=None, help="Where the audit samples go (outside the repo).")
    args, train_flags = parser.parse_known_args(argv)
    if args.audit and args.audit_dir is None:
        parser.error("--audit needs --audit-dir")
    pairs_dir = args.data / "pairs"
    if not pairs_dir.is_dir():
        print(f"{pairs_dir} not found: this benchmark needs the shared data folder; skipped", file=sys.stderr)
        return 0
    folders = sorted(p for p in pairs_dir.iterdir() if (p / "test.parquet").exists())
    only = {name for name in args.only.split(",") if name}
    more_k = [int(k) for k in args.more_k.split(",") if k]
    baseline, _ = ensure_embedder(args.embedder)
    result: dict[str, Any] = {
        **header("benchmarks.embedder_transfer", argv),
        "k": args.k,
        "train_flags": train_flags,
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as tmp:
        work = Path(tmp)
        models = args.models or work / "models"
        models.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            if only and folder.name not in only:
                continue
            model, record, process_seconds = train_without(folder.name, folders, models, train_flags)
            record["process_seconds"] = round(process_seconds, 1)
            catalogue, truth, positives = dataset_catalogue(folder, work)
            onnx = work / f"onnx-{folder.name}"
            before = measure(catalogue, truth, work, args.k, baseline, [], positives)
            tuned = ["--embedder-model", str(model)]
            after = measure(catalogue, truth, work, args.k, onnx, tuned, positives)
            larger = {k: measure(catalogue, truth, work, k, onnx, tuned, positives) for k in more_k}
            if args.audit:
                args.audit_dir.mkdir(parents=True, exist_ok=True)
                titles = catalogue_titles(catalogue)
                audit = args.audit_dir / f"{folder.name}.csv"
                write_audit(audit, after["missed"], after["found"], titles, positives, args.audit)
            for run in (before, after, *larger.values()):
                del run["missed"], run["found"]
            result["datasets"][folder.name] = {
                "baseline": before,
                "tuned": after,
                "tuned_at_k": {str(k): run for k, run in larger.items()},
                "training": record,
            }
            print(
                f"{folder.name}: recall {before['blocking_recall']:.4f} -> {after['blocking_recall']:.4f}",
                file=sys.stderr,
            )
    config = next(iter(result["datasets"].values()))["training"]["config"] if result["datasets"] else {}
    result["training"] = ", ".join(f"{key} {value}" for key, value in config.items() if key != "base_model")
    print(f"wrote {write_report(args.out, 'embedder_transfer', result, markdown(result))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
