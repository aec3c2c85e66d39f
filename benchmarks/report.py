"""The throughput report: JSON (everything measured), Markdown (for people) and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import machine_line, write_report

NAME = "throughput"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _export_time(seconds: float | None) -> str:
    return "reused from an earlier run in the same --work folder" if seconds is None else f"{seconds:.0f} s"


def _paths_table(result: dict[str, Any]) -> list[str]:
    lines = [
        (
            "| path | pairs/s end to end | pairs/s after load | tokens/s | padding eff. | peak RSS MB "
            "| start-up s | % of ceiling (e2e / after load) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["paths"]:
        lines.append(
            f"| {p['label']} | {p['pairs_per_s']:.1f} | {p['scoring_pairs_per_s']:.1f} | {p['tokens_per_s']:,.0f} "
            f"| {_fmt(p['padding_efficiency'], '.3f')} | {p['peak_rss_mb']:,.0f} | {p['startup_s']:.1f} "
            f"| {p['ceiling_fraction']:.1%} / {p['scoring_ceiling_fraction']:.1%} ({p['ceiling']}) |"
        )
    return lines


def _quality_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| path | max abs diff | Spearman | ndcg@10 (torch) | ndcg@10 delta | flips at 0.5 | F1 at 0.5 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in result["paths"]:
        q = p["quality"]
        lines.append(
            f"| {p['label']} | {q['max_abs_diff']:.2e} | {q['spearman']:.5f} "
            f"| {_fmt(q.get('ndcg_at_10'), '.4f')} ({_fmt(q.get('ndcg_at_10_reference'), '.4f')}) "
            f"| {_fmt(q.get('ndcg_at_10_delta'), '+.4f')} | {q['flips']} ({q['flip_rate']:.2%}) "
            f"| {_fmt(q.get('f1_at_threshold'), '.4f')} |"
        )
    return lines


def _targets_table(result: dict[str, Any]) -> list[str]:
    lines = ["| target | required | measured | met |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['name']} | {t['required']} | {t['measured']} | {'yes' if t['met'] else '**NO**'} |")
    return lines


def _best_torch(result: dict[str, Any]) -> list[str]:
    """Ratios to the faster torch path on this CPU (fp32 or bf16), and what `--precision auto` chose."""
    best, ratios, choice = result.get("best_torch"), result["ratios"], result.get("auto_choice") or {}
    if not best:
        return []
    names = {
        "scorer_auto": "scorer auto",
        "scorer_bf16": "scorer bf16",
        "scorer_int8": "scorer int8",
        "scorer_int8_openvino": "scorer int8-openvino",
    }
    parts = [
        f"{label} {ratios[f'{name}_vs_best_torch']:.2f}x ({ratios[f'{name}_vs_best_torch_after_load']:.2f}x after load)"
        for name, label in names.items()
        if f"{name}_vs_best_torch" in ratios
    ]
    return [
        f"Against the best torch path on this CPU (**{best}**), end to end: " + ", ".join(parts) + ".",
        "",
        f"`--precision auto` chose **{choice.get('precision')}**: {choice.get('reason')}.",
        "",
    ]


def markdown(result: dict[str, Any], chart: str) -> str:
    """The report for people: targets first, then speed, quality, ceilings and how it was measured."""
    model, data, ceilings = result["model"], result["data"], result["ceilings"]
    ratios = result["ratios"]
    missed = [t["name"] for t in result["targets"] if not t["met"]]
    verdict = "all targets met" if not missed else f"targets missed: {', '.join(missed)}"
    lines = [
        f"# Throughput: {model['name']}",
        "",
        f"`{result['command']}`",
        "",
        f"{machine_line(result)} {result['repeats']} round(s), paths alternated round-robin, medians reported.",
        "",
        (
            f"**scorer int8 / torch = {ratios['scorer_int8_vs_torch']:.2f}x** (target 2.5x), "
            f"**scorer int8 / ST ONNX int8 = {ratios['scorer_int8_vs_st_onnx_int8']:.2f}x** (target 1.6x), "
            f"end to end. Verdict: {verdict}."
        ),
        "",
        (
            f"After start-up (imports and model loading excluded): scorer int8 / torch "
            f"{ratios['scorer_int8_vs_torch_after_load']:.2f}x, scorer int8 / ST ONNX int8 "
            f"{ratios['scorer_int8_vs_st_onnx_int8_after_load']:.2f}x. Start-up is a fixed cost per process, "
            "so end-to-end ratios grow as inputs shrink: compare runs of the same size."
        ),
        "",
        *_best_torch(result),
        *([result["note"], ""] if result.get("note") else []),
        "## Targets",
        "",
        *_targets_table(result),
        "",
        "Per-round ratios (same round, so the same machine load): "
        + ", ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in result["round_ratios"].items())
        + ".",
        "",
        "## Speed",
        "",
        *_paths_table(result),
        "",
        f"![throughput]({chart})",
        "",
        "## Quality against the torch path",
        "",
        *_quality_table(result),
        "",
        "## Model, data and ceilings",
        "",
        f"- model: {model['description']}; checkpoint `{model['checkpoint']}`, artifact `{model['artifact']}`.",
        (
            f"- data: {data['rows']:,} pairs from {', '.join(f'`{f}`' for f in data['files'])}; "
            f"{data['tokens']:,} tokens, {data['mean_tokens']:.1f} tokens/pair (max {data['max_tokens']}), "
            f"{data['truncated']} pairs truncated at {model['max_length']} tokens."
        ),
        f"- FLOPs: {model['gflop_per_pair']:.3f} GFLOP/pair on average ({model['flops_formula']}).",
        (
            f"- ceilings (median of {len(ceilings['samples'])} measurements between the paths, "
            f"{ceilings['size']}^3 GEMM): fp32 {ceilings['fp32_gflops']:.0f} GFLOP/s (torch matmul), "
            f"int8 {ceilings['int8_gops']:.0f} GOP/s (ORT MatMulInteger u8 x s8)"
            + (f", bf16 {ceilings['bf16_gflops']:.0f} GFLOP/s (torch bf16 matmul)" if "bf16_gflops" in ceilings else "")
            + "; as pairs/s for this model and data: "
            + ", ".join(
                f"{k} {ceilings[f'{k}_pairs_per_s']:.0f}"
                for k in ("fp32", "int8", "bf16")
                if f"{k}_pairs_per_s" in ceilings
            )
            + "."
        ),
        f"- sentence-transformers ONNX export (once, not timed in the paths): {_export_time(result['st_onnx_export_s'])}.",
        "",
        "## How it is measured",
        "",
        (
            "Each path is a fresh process, Parquet in to Parquet out, so imports, model loading and I/O count; "
            "wall time and the child's own peak RSS (`os.wait4`) are taken by the harness. *After load* is the "
            "time inside the process after imports and loading (scoring loop of `scorer run`; read + predict + "
            "write for the sentence-transformers paths). Padding efficiency = real tokens / padded tokens: from "
            "`scorer run`'s report, and for the sentence-transformers paths computed by replaying `predict`'s "
            "batching (sorted by characters, batches of 32, padded to the longest). Quality compares each path's "
            "scores with the torch path's on the same rows; ndcg@10 uses the data's labels, grouped by query. "
            "The machine is shared: compare ratios within one report, not absolute figures across reports."
        ),
        "",
    ]
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    """Bars: pairs/s end to end and after load per path, with the ceilings; peak RSS per path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = result["paths"]
    names = [p["name"] for p in paths]
    x = range(len(paths))
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    speed.bar([i - 0.2 for i in x], [p["pairs_per_s"] for p in paths], 0.4, label="end to end")
    speed.bar([i + 0.2 for i in x], [p["scoring_pairs_per_s"] for p in paths], 0.4, label="after load")
    ceilings = result["ceilings"]
    speed.axhline(ceilings["int8_pairs_per_s"], color="tab:red", linestyle="--", label="int8 GEMM ceiling")
    speed.axhline(ceilings["fp32_pairs_per_s"], color="tab:gray", linestyle=":", label="fp32 GEMM ceiling")
    speed.set_xticks(list(x), names)
    speed.set_ylabel("pairs/s")
    speed.set_title(f"{result['model']['name']}: {result['data']['rows']:,} pairs, median of {result['repeats']}")
    speed.legend(fontsize=8)
    memory.bar(list(x), [p["peak_rss_mb"] for p in paths], 0.5, color="tab:green")
    memory.set_xticks(list(x), names)
    memory.set_ylabel("peak RSS (MB)")
    memory.set_title("peak memory per process")
    for axis in (speed, memory):
        axis.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write `throughput.json`, `throughput.md` and `throughput.png` into `out`; returns their paths."""
    write_report(out, NAME, result, markdown(result, f"{NAME}.png"), lambda path: chart(result, path))
    return {kind: out / f"{NAME}.{kind}" for kind in ("json", "md", "png")}
