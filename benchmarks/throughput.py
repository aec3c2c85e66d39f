"""`python -m benchmarks.throughput`: the ONNX paths against the torch path, end to end, on one machine.

    python -m benchmarks.throughput --data ../shared/data/pairs/abt-buy/test.parquet \\
        --checkpoint CKPT --artifact ARTIFACT --out benchmarks/results/minilm --repeats 3

Runs the paths of `benchmarks.paths` round-robin (the start rotates each round) together with
the GEMM ceilings (`benchmarks.ceiling`), `--repeats` rounds, each in a fresh process, and reports
medians, the ratios the targets are about, and quality against the torch path (`benchmarks.quality`).
Data files that are absent are skipped with a message; with none left it exits 0 without measuring.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow.parquet as pq

from benchmarks import report
from benchmarks.child import ChildRun, run_child
from benchmarks.flops import load_config, total_flops
from benchmarks.harness import header
from benchmarks.inputs import load_pairs, present
from benchmarks.paths import (
    SCORER_AUTO,
    SCORER_BF16,
    SCORER_INT8,
    SCORER_INT8_OPENVINO,
    ST_ONNX_INT8,
    TORCH,
    TORCH_BF16,
    BenchPath,
    build_paths,
)
from benchmarks.quality import compare
from benchmarks.st_onnx import cache_dir, is_built
from scorer.artifact import Manifest, load_manifest
from scorer.precision import cpu_info, unavailable_reason
from scorer.tokenize import PairTokenizer
from scorer.variants import VARIANTS

ST_BATCH_SIZE = 32  # CrossEncoder.predict's default
TARGET_VS_TORCH, TARGET_VS_ST = 2.5, 1.6
TARGET_VS_BEST_TORCH, TARGET_VS_BEST_TORCH_AFTER_LOAD = 2.0, 1.5  # `scorer run` defaults vs the best torch
MIN_SPEARMAN, MAX_NDCG_DELTA, MAX_FLIP_RATE = 0.99, 0.005, 0.005
FLOPS_FORMULA = (
    "per pair of n tokens: n x sum over layers (2 x linear weights + 4 x span x hidden) + head; see benchmarks/flops.py"
)


@dataclass
class Measured:
    """The runs of one path across rounds, and its first run's scores."""

    path: BenchPath
    runs: list[ChildRun] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    scores: np.ndarray | None = None


def st_padding(queries: list[str], candidates: list[str], lengths: np.ndarray, batch_size: int = ST_BATCH_SIZE) -> int:
    """Padded tokens of `CrossEncoder.predict`: pairs sorted by descending character count (its own
    `np.argsort`), fixed batches of `batch_size`, each padded to its longest pair."""
    order = np.argsort([-(len(q) + len(c)) for q, c in zip(queries, candidates, strict=True)])
    sorted_lengths = lengths[order]
    return int(
        sum(
            len(chunk) * int(chunk.max())
            for chunk in (sorted_lengths[i : i + batch_size] for i in range(0, len(order), batch_size))
        )
    )


def scoring_seconds(path: BenchPath, child_report: dict[str, Any]) -> float:
    """Time inside the process after imports and loading (see `benchmarks.paths`)."""
    if path.name.startswith("scorer"):
        return float(child_report["seconds"])
    return float(child_report["read_s"] + child_report["predict_s"] + child_report["write_s"])


def measure_rounds(
    paths: list[BenchPath], input_path: Path, work: Path, repeats: int, ceiling_size: int, log: Callable[[str], None]
) -> tuple[dict[str, Measured], list[dict[str, float]]]:
    """Run every path and the ceiling once per round, the order rotated each round."""
    measured = {path.name: Measured(path) for path in paths}
    ceilings: list[dict[str, float]] = []
    ceiling_argv = [sys.executable, "-m", "benchmarks.ceiling", "--size", str(ceiling_size)]
    items: list[BenchPath | None] = [*paths, None]  # None: the ceiling
    for round_index in range(repeats):
        shift = round_index % len(items)
        for item in items[shift:] + items[:shift]:
            if item is None:
                run = run_child(ceiling_argv, work / "logs" / f"ceiling-{round_index}.log")
                ceilings.append(json.loads(run.stdout))
                log(
                    f"round {round_index + 1}: ceilings {ceilings[-1]['fp32_gflops']:.0f} GFLOP/s fp32, "
                    f"{ceilings[-1]['int8_gops']:.0f} GOP/s int8"
                )
                continue
            output = work / "runs" / f"{item.name}-{round_index}.parquet"
            child_report = work / "runs" / f"{item.name}-{round_index}.json"
            output.parent.mkdir(parents=True, exist_ok=True)
            run = run_child(
                item.argv(input_path, output, child_report), work / "logs" / f"{item.name}-{round_index}.log"
            )
            entry = measured[item.name]
            entry.runs.append(run)
            entry.reports.append(json.loads(child_report.read_text()))
            if entry.scores is None:
                entry.scores = pq.read_table(output, columns=["score"]).column("score").to_numpy()
            output.unlink()
            log(f"round {round_index + 1}: {item.name} {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:,.0f} MB")
    return measured, ceilings


def _target(name: str, required: str, measured: str, met: bool) -> dict[str, Any]:
    return {"name": name, "required": required, "measured": measured, "met": bool(met)}


def _spearman_target(name: str, quality: dict[str, Any]) -> dict[str, Any]:
    return _target(name, f">= {MIN_SPEARMAN}", f"{quality['spearman']:.5f}", quality["spearman"] >= MIN_SPEARMAN)


def _flips_target(name: str, quality: dict[str, Any]) -> dict[str, Any]:
    measured = f"{quality['flips']} ({quality['flip_rate']:.2%})"
    return _target(name, f"<= {MAX_FLIP_RATE:.1%}", measured, quality["flip_rate"] <= MAX_FLIP_RATE)


def targets(ratios: dict[str, float], quality: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for `scorer run` int8, each with its measured figure."""
    delta = quality.get("ndcg_at_10_delta")
    return [
        _target(
            "scorer int8 / torch",
            f">= {TARGET_VS_TORCH}x",
            f"{ratios['scorer_int8_vs_torch']:.2f}x",
            ratios["scorer_int8_vs_torch"] >= TARGET_VS_TORCH,
        ),
        _target(
            "scorer int8 / ST ONNX int8",
            f">= {TARGET_VS_ST}x",
            f"{ratios['scorer_int8_vs_st_onnx_int8']:.2f}x",
            ratios["scorer_int8_vs_st_onnx_int8"] >= TARGET_VS_ST,
        ),
        _spearman_target("int8 Spearman vs torch", quality),
        _target(
            "int8 ndcg@10 vs torch",
            f"within {MAX_NDCG_DELTA}",
            "n/a (no labels)" if delta is None else f"{delta:+.4f}",
            delta is not None and abs(delta) <= MAX_NDCG_DELTA,
        ),
        _flips_target("int8 decision flips at 0.5", quality),
    ]


def bf16_targets(ratios: dict[str, float], best_torch: str, quality: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 9's targets for `scorer run` with its defaults (auto) against the faster torch path here."""
    return [
        _target(
            f"scorer auto / best torch ({best_torch})",
            f">= {TARGET_VS_BEST_TORCH}x",
            f"{ratios['scorer_auto_vs_best_torch']:.2f}x",
            ratios["scorer_auto_vs_best_torch"] >= TARGET_VS_BEST_TORCH,
        ),
        _target(
            "scorer auto / best torch, after start-up",
            f">= {TARGET_VS_BEST_TORCH_AFTER_LOAD}x",
            f"{ratios['scorer_auto_vs_best_torch_after_load']:.2f}x",
            ratios["scorer_auto_vs_best_torch_after_load"] >= TARGET_VS_BEST_TORCH_AFTER_LOAD,
        ),
        _spearman_target("auto Spearman vs torch fp32", quality),
        _flips_target("auto decision flips at 0.5 vs torch fp32", quality),
    ]


def runs_here(manifest: Manifest, precision: str) -> bool:
    """Whether this machine runs the artifact's `precision` variant: gate passed, hardware and runtime here."""
    variant = manifest.variants.get(precision)
    return bool(variant and variant.parity.get("passed") and unavailable_reason(variant, precision, cpu_info()) is None)


def summarise_path(
    entry: Measured,
    reference: np.ndarray,
    table_info: dict[str, Any],
    flops: float,
    ceilings: dict[str, float],
    st_padded: int,
) -> dict[str, Any]:
    """One path's medians, ceiling fractions and quality."""
    rows, tokens = table_info["rows"], table_info["tokens"]
    seconds = statistics.median(run.seconds for run in entry.runs)
    scoring = statistics.median(scoring_seconds(entry.path, r) for r in entry.reports)
    if entry.path.name.startswith("scorer"):
        padding = entry.reports[0]["padding_efficiency"]
    else:
        padding = tokens / st_padded if st_padded else None
    kind = entry.path.ceiling
    if entry.path.name == SCORER_AUTO:  # bounded by the variant auto chose
        chosen = entry.reports[0].get("precision")
        kind = VARIANTS[chosen].gated_as if chosen in VARIANTS else "fp32"
    if f"{kind}_pairs_per_s" not in ceilings:
        kind = "fp32"  # no bf16 ceiling measured (a CPU without bf16): the fp32 one
    ceiling = ceilings[f"{kind}_pairs_per_s"] * flops / rows
    assert entry.scores is not None
    return {
        "name": entry.path.name,
        "label": entry.path.label,
        "ceiling": kind,
        "seconds": [run.seconds for run in entry.runs],
        "seconds_median": seconds,
        "scoring_seconds_median": scoring,
        "startup_s": seconds - scoring,
        "pairs_per_s": rows / seconds,
        "scoring_pairs_per_s": rows / scoring,
        "tokens_per_s": tokens / seconds,
        "padding_efficiency": padding,
        "peak_rss_mb": max(run.peak_rss_mb for run in entry.runs),
        "ceiling_fraction": flops / seconds / ceiling,
        "scoring_ceiling_fraction": flops / scoring / ceiling,
        "child_reports": entry.reports,
        "quality": compare(reference, entry.scores, table_info["groups"], table_info["labels"]),
    }


def _model_info(name: str, checkpoint: Path, artifact: Path, max_length: int, gflop_per_pair: float) -> dict[str, Any]:
    config = load_config(checkpoint)
    description = (
        f"{config['model_type']}, {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
        f"intermediate {config['intermediate_size']}, {config['num_attention_heads']} heads, "
        f"vocab {config['vocab_size']:,}"
    )
    return {
        "name": name,
        "checkpoint": str(checkpoint),
        "artifact": str(artifact),
        "description": description,
        "max_length": max_length,
        "gflop_per_pair": gflop_per_pair,
        "flops_formula": FLOPS_FORMULA,
    }


def benchmark(
    files: list[Path],
    checkpoint: Path,
    artifact: Path,
    work: Path,
    rows: int | None,
    repeats: int,
    ceiling_size: int,
    name: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Measure everything; returns the report's data."""
    table = load_pairs(files, rows)
    input_path = work / "input.parquet"
    pq.write_table(table.drop_columns(["group"]), input_path)
    queries, candidates = table.column("query").to_pylist(), table.column("candidate").to_pylist()

    manifest = load_manifest(artifact)
    encoded = PairTokenizer.from_artifact(artifact, manifest).encode(queries, candidates)
    config = load_config(checkpoint)
    flops = total_flops(config, encoded.lengths)

    st_dir = cache_dir(work, checkpoint)
    export_seconds = None  # reused from an earlier run with the same --work
    if not is_built(st_dir):
        log(f"building sentence-transformers' ONNX int8 model in {st_dir}")
        start = time.perf_counter()
        run_child(
            [sys.executable, "-m", "benchmarks.st_onnx", str(checkpoint), "-o", str(st_dir)],
            work / "logs" / "st-onnx.log",
        )
        export_seconds = time.perf_counter() - start

    bf16 = runs_here(manifest, "bf16")
    int8_openvino = runs_here(manifest, "int8-openvino")
    paths = build_paths(checkpoint, artifact, st_dir, bf16, int8_openvino)
    measured, ceiling_samples = measure_rounds(paths, input_path, work, repeats, ceiling_size, log)

    mean_flops = flops / table.num_rows
    ceilings: dict[str, Any] = {
        key: statistics.median(sample[key] for sample in ceiling_samples)
        for key in ("fp32_gflops", "int8_gops", "bf16_gflops")
        if key in ceiling_samples[0]
    }
    for key, rate in list(ceilings.items()):
        ceilings[f"{key.split('_')[0]}_pairs_per_s"] = rate * 1e9 / mean_flops
    ceilings.update(size=ceiling_size, samples=ceiling_samples)
    labels = table.column("label").to_numpy() if "label" in table.column_names else None
    info = {
        "rows": table.num_rows,
        "tokens": int(encoded.lengths.sum()),
        "groups": np.asarray(table.column("group")),
        "labels": labels,
    }
    reference = measured[TORCH].scores
    assert reference is not None
    st_padded = st_padding(queries, candidates, encoded.lengths)
    results = [summarise_path(m, reference, info, flops, ceilings, st_padded) for m in measured.values()]
    by_name = {r["name"]: r for r in results}

    def ratio(a: str, b: str, key: str = "pairs_per_s") -> float:
        return by_name[a][key] / by_name[b][key]

    def per_round(a: str, b: str) -> list[float]:
        return [rb.seconds / ra.seconds for ra, rb in zip(measured[a].runs, measured[b].runs, strict=True)]

    ratios = {
        "scorer_int8_vs_torch": ratio(SCORER_INT8, TORCH),
        "scorer_int8_vs_st_onnx_int8": ratio(SCORER_INT8, ST_ONNX_INT8),
        "scorer_fp32_vs_torch": ratio("scorer_fp32", TORCH),
        "st_onnx_int8_vs_torch": ratio(ST_ONNX_INT8, TORCH),
        "scorer_int8_vs_torch_after_load": ratio(SCORER_INT8, TORCH, "scoring_pairs_per_s"),
        "scorer_int8_vs_st_onnx_int8_after_load": ratio(SCORER_INT8, ST_ONNX_INT8, "scoring_pairs_per_s"),
    }
    round_ratios = {
        "scorer int8 / torch": per_round(SCORER_INT8, TORCH),
        "scorer int8 / ST ONNX int8": per_round(SCORER_INT8, ST_ONNX_INT8),
    }
    checks = targets(ratios, by_name[SCORER_INT8]["quality"])
    best_torch = None
    if bf16:
        best_torch = max((TORCH, TORCH_BF16), key=lambda path: by_name[path]["pairs_per_s"])
        compared = [
            SCORER_AUTO,
            SCORER_BF16,
            SCORER_INT8,
            TORCH_BF16,
            *([SCORER_INT8_OPENVINO] if int8_openvino else []),
        ]
        for path in compared:
            ratios[f"{path}_vs_best_torch"] = ratio(path, best_torch)
            ratios[f"{path}_vs_best_torch_after_load"] = ratio(path, best_torch, "scoring_pairs_per_s")
        round_ratios[f"scorer auto / {best_torch}"] = per_round(SCORER_AUTO, best_torch)
        round_ratios[f"scorer bf16 / {best_torch}"] = per_round(SCORER_BF16, best_torch)
        if int8_openvino:
            round_ratios[f"scorer int8-openvino / {best_torch}"] = per_round(SCORER_INT8_OPENVINO, best_torch)
        checks += bf16_targets(ratios, best_torch, by_name[SCORER_AUTO]["quality"])
    return {
        **header("benchmarks.throughput"),
        "model": _model_info(name, checkpoint, artifact, manifest.max_length, mean_flops / 1e9),
        "data": {
            "files": [str(f) for f in files],
            "rows": table.num_rows,
            "tokens": info["tokens"],
            "mean_tokens": float(encoded.lengths.mean()),
            "max_tokens": int(encoded.lengths.max()),
            "truncated": encoded.truncated,
            "has_labels": labels is not None,
        },
        "repeats": repeats,
        "st_onnx_export_s": export_seconds,
        "ceilings": ceilings,
        "paths": results,
        "ratios": ratios,
        "round_ratios": round_ratios,
        "best_torch": best_torch,
        "auto_choice": measured[SCORER_AUTO].reports[0].get("precision_choice") if bf16 else None,
        "targets": checks,
    }


@click.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Parquet file of pairs (query, candidate[, label]); repeatable.",
)
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The sentence-transformers CrossEncoder checkpoint (the torch path).",
)
@click.option(
    "--artifact",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="`scorer export` artifact of that checkpoint (fp32 and int8).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder: throughput.md, .json and .png.",
)
@click.option("--rows", type=click.IntRange(min=1), default=None, help="Use the first N pairs [all].")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Rounds.")
@click.option("--name", default=None, help="Model name in the report [the checkpoint folder's name].")
@click.option("--note", default="", help="A paragraph for the report (e.g. why quality targets do not apply).")
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scratch folder; reuse it to keep the sentence-transformers ONNX export [temporary].",
)
@click.option(
    "--ceiling-size",
    type=click.IntRange(min=16),
    default=2048,
    show_default=True,
    help="GEMM size n for the n^3 ceilings.",
)
def main(
    data: tuple[Path, ...],
    checkpoint: Path,
    artifact: Path,
    out: Path,
    rows: int | None,
    repeats: int,
    name: str | None,
    note: str,
    work: Path | None,
    ceiling_size: int,
) -> None:
    """Benchmark torch, sentence-transformers ONNX int8 and `scorer run` fp32/int8 end to end."""

    def log(message: str) -> None:
        click.echo(message, err=True)

    files = present(list(data), log)
    if not files:
        log("no benchmark data found: nothing measured")
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        folder = work or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        result = benchmark(
            files, checkpoint, artifact, folder, rows, repeats, ceiling_size, name or checkpoint.name, log
        )
    result["note"] = note
    written = report.write(result, out)
    ratios = result["ratios"]
    log(
        f"scorer int8 / torch {ratios['scorer_int8_vs_torch']:.2f}x, "
        f"scorer int8 / ST ONNX int8 {ratios['scorer_int8_vs_st_onnx_int8']:.2f}x; report {written['md']}"
    )


if __name__ == "__main__":
    main()
