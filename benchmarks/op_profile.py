"""`python -m benchmarks.op_profile`: where one variant's time goes, by stage and by ONNX op type.

    python -m benchmarks.op_profile --artifact ART --precision int8 --data PAIRS.parquet [--rows 1000] [--out DIR]

Scores the first rows of the data as `scorer run` does (its tokenizer, `plan_batches`, `pad_batch`)
in one thread of Python with an ONNX Runtime session built like `scorer.session.OnnxModel.load`
(intra-op threads = cores, sequential, all graph optimisations) plus ORT's profiler, and reports:
tokenization, padding and `session.run` wall time; inside `session.run`, the kernel time per op type
(from the profile's `Node` events) and what is left (scheduling, allocation, copies).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import onnxruntime as ort
import pyarrow.parquet as pq

from benchmarks.harness import header, report_head, write_report
from scorer.artifact import variant_path
from scorer.batching import pad_batch, plan_batches
from scorer.model import DEFAULT_BATCH_TOKENS, LoadedModel
from scorer.session import default_threads, session_options


def _session(path: Path, threads: int, prefix: str) -> ort.InferenceSession:
    options = session_options(threads)  # the same settings `scorer run` uses
    options.enable_profiling = True
    options.profile_file_prefix = prefix
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def kernel_times(profile_path: Path, skip_runs: int = 0) -> dict[str, dict[str, float]]:
    """Total kernel milliseconds and call counts per op type from an ORT profile, leaving out the
    kernels of the first `skip_runs` `session.run` calls (warm-up)."""
    events = json.loads(profile_path.read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    after = runs[skip_runs - 1][1] if skip_runs else -1
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"ms": 0.0, "calls": 0})
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time") and event["ts"] > after:
            entry = totals[event["args"]["op_name"]]
            entry["ms"] += event["dur"] / 1000
            entry["calls"] += 1
    return dict(totals)


def profile(
    artifact: Path, precision: str, queries: list[str], candidates: list[str], batch_tokens: int, threads: int
) -> dict[str, Any]:
    """Stage times and per-op kernel times for scoring the pairs once (after one warm-up batch)."""
    model = LoadedModel.load(artifact, precision, threads)
    start = time.perf_counter()
    encoded = model.tokenizer.encode(queries, candidates)
    tokenize_s = time.perf_counter() - start
    batches = plan_batches(encoded.lengths, batch_tokens)
    with tempfile.TemporaryDirectory(prefix="op-profile-") as scratch:
        session = _session(variant_path(artifact, model.manifest, precision), threads, f"{scratch}/ort")
        names = [i.name for i in session.get_inputs()]
        pad_s = run_s = 0.0
        warm = pad_batch(encoded.ids, encoded.type_ids, batches[-1], model.manifest.pad_token_id)
        session.run(None, {n: warm[n] for n in names})
        for batch in batches:
            start = time.perf_counter()
            feeds = pad_batch(encoded.ids, encoded.type_ids, batch, model.manifest.pad_token_id)
            pad_s += time.perf_counter() - start
            start = time.perf_counter()
            session.run(None, {n: feeds[n] for n in names})
            run_s += time.perf_counter() - start
        ops = kernel_times(Path(session.end_profiling()), skip_runs=1)
    return {
        "artifact": str(artifact),
        "precision": precision,
        "recipe": model.manifest.variants[precision].recipe,
        "pairs": len(queries),
        "tokens": int(encoded.lengths.sum()),
        "batches": len(batches),
        "threads": threads,
        "tokenize_s": tokenize_s,
        "pad_s": pad_s,
        "run_s": run_s,
        "kernel_s": sum(op["ms"] for op in ops.values()) / 1000,
        "ops": dict(sorted(ops.items(), key=lambda item: -item[1]["ms"])),
    }


def markdown(result: dict[str, Any], top: int = 15) -> str:
    total_ms = sum(op["ms"] for op in result["ops"].values())
    lines = [
        *report_head(f"Op profile: {result['precision']} ({result['recipe']})", result),
        (
            f"{result['pairs']:,} pairs, {result['tokens']:,} tokens, {result['batches']} batches, "
            f"{result['threads']} threads. Tokenization {result['tokenize_s']:.2f} s, padding {result['pad_s']:.2f} s, "
            f"`session.run` {result['run_s']:.2f} s ({result['pairs'] / result['run_s']:.1f} pairs/s), of which "
            f"kernels {result['kernel_s']:.2f} s."
        ),
        "",
        "| op type | calls | kernel ms | share |",
        "|---|---:|---:|---:|",
    ]
    for name, op in list(result["ops"].items())[:top]:
        lines.append(f"| {name} | {op['calls']:,} | {op['ms']:,.0f} | {op['ms'] / total_ms:.1%} |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--artifact", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="int8", show_default=True)
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Parquet file of pairs.")
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--batch-tokens", type=click.IntRange(min=8), default=DEFAULT_BATCH_TOKENS, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Intra-op threads [all cores].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write md + json.")
@click.option("--label", default="", help="Suffix of the report's name: op_profile-PRECISION[-LABEL].")
def main(
    artifact: Path,
    precision: str,
    data: Path,
    rows: int,
    batch_tokens: int,
    threads: int | None,
    out: Path | None,
    label: str,
) -> None:
    """Profile one variant of ARTIFACT on the first --rows pairs of --data."""
    if not data.is_file():
        click.echo(f"skipping: {data} not found (the real data is not part of the repository)", err=True)
        return
    table = pq.read_table(data, columns=["query", "candidate"]).slice(0, rows)
    result = header("benchmarks.op_profile") | profile(
        artifact,
        precision,
        table.column("query").to_pylist(),
        table.column("candidate").to_pylist(),
        batch_tokens,
        threads or default_threads(),
    )
    text = markdown(result)
    click.echo(text)
    if out is not None:
        write_report(out, "-".join(filter(None, ("op_profile", precision, label))), result, text)


if __name__ == "__main__":
    main()
