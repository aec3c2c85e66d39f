"""Agreement of every variant this CPU runs with the artifact's fp32 graph, on real pairs: what `auto` may pick is
only as good as this. For each input (e.g. titles, and whole records with descriptions), each variant's Spearman,
decision flips at the gate's threshold and at the tuned one, and max abs diff, beside its export verdict and what
`--precision auto` chose for a run of that input.

    python -m benchmarks.agreement --artifact ART --data ../shared/data/pairs/abt-buy/test.parquet \\
        --columns query,candidate --columns query_text,candidate_text --out benchmarks/results/agreement
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.harness import header, report_head, write_report
from scorer.artifact import load_manifest
from scorer.gates import Gates, failures
from scorer.metrics import parity
from scorer.model import LoadedModel
from scorer.precision import PROBE_PAIRS, TimedProbe, choose_cpu, cpu_info, unavailable_reason

NAME = "agreement"


def measure(artifact: Path, data: Path, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """Per column pair and variant: parity with fp32, and the gate's verdict on those figures."""
    manifest = load_manifest(artifact)
    gates = Gates.from_dict(manifest.gates)
    tuned = manifest.source.get("threshold") or gates.threshold
    runnable = [p for p, v in manifest.variants.items() if not unavailable_reason(v, p, cpu_info())]
    models = {p: LoadedModel.load(artifact, p) for p in runnable}
    table = pq.read_table(data)
    inputs = []
    for query_col, candidate_col in columns:
        queries, candidates = table[query_col].to_pylist(), table[candidate_col].to_pylist()
        reference = models["fp32"].score(queries, candidates)
        variants = {}
        for precision, model in models.items():
            scores = model.score(queries, candidates)
            figures = parity(reference, scores, gates.threshold)
            variants[precision] = {
                **figures,
                "flips_at_tuned": parity(reference, scores, tuned)["flips"],
                "gate_here": failures(precision, figures, gates),
                "gate_at_export": manifest.variants[precision].parity.get("failures"),
            }
        probe = TimedProbe(artifact, None, lambda q=queries, c=candidates: (q[:PROBE_PAIRS], c[:PROBE_PAIRS]))
        with tempfile.TemporaryDirectory() as cache:  # a fresh decision, not one cached for other pairs
            auto = choose_cpu(manifest, NAME, cpu_info(), probe, Path(cache) / "precision.json")
        inputs.append(
            {"columns": [query_col, candidate_col], "pairs": len(queries), "variants": variants, "auto": auto.to_dict()}
        )
    return {"artifact": str(artifact), "data": str(data), "tuned_threshold": tuned, "inputs": inputs}


def _markdown(result: dict[str, Any]) -> str:
    lines = report_head("Agreement of each variant with fp32 on real pairs", result)
    lines += [f"Data: `{result['data']}`; tuned threshold {result['tuned_threshold']:.3f}.", ""]
    for entry in result["inputs"]:
        lines += [f"## `{' / '.join(entry['columns'])}`, {entry['pairs']} pairs", ""]
        lines += ["| variant | spearman | flips at 0.5 | flips at tuned | max abs diff | gate here | gate at export |"]
        lines += ["|---|---:|---:|---:|---:|---|---|"]
        for precision, v in entry["variants"].items():
            here = "pass" if not v["gate_here"] else "FAIL: " + "; ".join(v["gate_here"])
            export = "pass" if not v["gate_at_export"] else "FAIL: " + "; ".join(v["gate_at_export"])
            lines.append(
                f"| {precision} | {v['spearman']:.5f} | {v['flips']} ({v['flip_rate']:.2%}) | {v['flips_at_tuned']} "
                f"| {v['max_abs_diff']:.2e} | {here} | {export} |"
            )
        lines += [
            "",
            f"`--precision auto` on this input: {entry['auto']['precision']} ({entry['auto']['reason']}).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="Parquet file of pairs")
    parser.add_argument("--columns", action="append", required=True, help="QUERY_COL,CANDIDATE_COL (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("build/bench/agreement"))
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.exit(2, f"{args.data}: no such file (the product data is not part of a clone)\n")
    columns = [tuple(spec.split(",", 1)) for spec in args.columns]
    result = {**header("benchmarks.agreement", argv), **measure(args.artifact, args.data, columns)}
    print(write_report(args.out, NAME, result, _markdown(result)).read_text())


if __name__ == "__main__":
    main()
