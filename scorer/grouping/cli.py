"""`scorer group SCORED.parquet... -o GROUPS.parquet`: scored pairs -> duplicate groups with stable ids.

Every record id found in the scored pairs gets one output row: `id`, `group_id` (int64), `group_size`, and
its group's `min_edge_score`, `mean_edge_score` (over the scored pairs inside the group) and `edge_density`
(share of the group's record pairs scoring at least the threshold); the three are null for singletons.
Rows are sorted by group id, then id. How groups are formed: `scorer.grouping.cluster`; how ids carry
over from `--previous`: `scorer.grouping.carry`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scorer.errors import InputError
from scorer.flags import FiniteFloat
from scorer.grouping.carry import Carried, carry_forward
from scorer.grouping.cluster import Clustering, cluster, largest_component
from scorer.grouping.edges import Graph, build_graph
from scorer.grouping.evaluate import against_truth
from scorer.grouping.inputs import GROUPS_KEY, IdKind, read_groups, read_scored, read_truth
from scorer.grouping.summary import GroupStats, cuts, group_stats, size_histogram
from scorer.output import OutputLock
from scorer.paths import atomic_write, check_distinct, check_file_target, write_text_atomic
from scorer.reader import resolve_inputs

DEFAULT_THRESHOLD = 0.5
METHOD = (
    "connected components of the pairs scoring >= threshold; inside each component that is not complete, "
    "average linkage (unscored pairs count 0) merging while the mean pair score >= threshold, then single-record "
    "moves that raise sum(score - threshold) within groups; size cap. Chosen on B-cubed F1 over the real test "
    "splits: benchmarks/results/grouping"
)
LARGEST = 10  # groups listed in the report

# Average linkage holds one component's pairs at once: peak RSS grew by about 280 bytes a pair between cliques of
# 1000 and 2000 records (0.5M and 2M pairs: 296 and 712 MB, AMX Xeon); 5M pairs is about 1.5 GB.
BYTES_PER_PAIR = 280
MAX_COMPONENT_PAIRS = 5_000_000


def _threshold(given: float | None, found: dict[Path, float]) -> tuple[float, str]:
    """The threshold and where it came from: the flag, the scored files' metadata, or the default."""
    if given is not None:
        return given, "--threshold"
    values = sorted(set(found.values()))
    if len(values) > 1:
        listed = ", ".join(f"{path}: {value}" for path, value in found.items())
        raise InputError(f"the scored files' metadata disagree on the threshold ({listed}); pass --threshold")
    if values and not 0 < values[0] <= 1:
        raise InputError(f"{next(iter(found))}: metadata threshold {values[0]} is not within (0, 1]; pass --threshold")
    if values:
        return values[0], f"metadata of {next(iter(found))}"
    return DEFAULT_THRESHOLD, "default: no threshold in the scored files' metadata"


def _floats(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.float32), mask=np.isnan(values))


def _table(graph: Graph, groups: np.ndarray, stats: GroupStats, carried: Carried, metadata: dict) -> pa.Table:
    ids = graph.ids.cast(pa.string()) if pa.types.is_large_string(graph.ids.type) else graph.ids
    order = np.argsort(carried.group_ids[groups], kind="stable")
    g = groups[order]
    table = pa.table(
        {
            "id": ids.take(pa.array(order)),
            "group_id": carried.group_ids[g],
            "group_size": stats.size[g].astype(np.int64),
            "min_edge_score": _floats(stats.min_score[g]),
            "mean_edge_score": _floats(stats.mean_score[g]),
            "edge_density": _floats(stats.density[g]),
        }
    )
    return table.replace_schema_metadata({GROUPS_KEY: json.dumps(metadata)})


def _largest(graph: Graph, groups: np.ndarray, stats: GroupStats, carried: Carried) -> list[dict[str, Any]]:
    top = np.argsort(-stats.size, kind="stable")[:LARGEST]
    return [
        {
            "group_id": int(carried.group_ids[g]),
            "size": int(stats.size[g]),
            "min_edge_score": float(stats.min_score[g]),
            "mean_edge_score": float(stats.mean_score[g]),
            "edge_density": float(stats.density[g]),
            "ids_sample": graph.ids.take(pa.array(np.flatnonzero(groups == g)[:5])).to_pylist(),
        }
        for g in top
        if stats.size[g] > 1
    ]


def _summary(report: dict[str, Any]) -> list[str]:
    """A few lines for stderr."""
    c = report["cuts"]
    lines = [
        (
            f"grouped {report['records']:,} records from {report['pairs']:,} pairs at threshold {report['threshold']} "
            f"({report['threshold_source']}): {report['groups']:,} groups, {report['singletons']:,} singletons, "
            f"largest {report['largest_group_size']:,}"
        ),
        (
            f"cuts: {c['components_split']:,} of {c['components']:,} components split, {c['matching_edges_cut']:,} of "
            f"{c['matching_edges']:,} matching pairs cut, {c['merges_refused_by_cap']:,} merges refused by the size cap "
            f"({c['max_group_size']})"
        ),
    ]
    if "previous" in report:
        p = report["previous"]
        lines.append(
            f"previous: {p['ids_kept']:,} ids kept, {p['ids_issued']:,} new, {p['merges']:,} merges, "
            f"{p['splits']:,} splits, {p['moved_records']:,} records moved, {p['records_added']:,} added, "
            f"{p['records_removed']:,} removed"
        )
    if "truth" in report:
        t = report["truth"]
        ours, plain = t["groups"], t["connected_components"]
        lines.append(
            f"truth: B-cubed F1 {ours['bcubed_f1']:.4f} (connected components {plain['bcubed_f1']:.4f}), "
            f"pairwise F1 {_fmt(ours['pairwise_f1'])} ({_fmt(plain['pairwise_f1'])})"
        )
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _report(
    graph: Graph, clustering: Clustering, stats: GroupStats, carried: Carried, settings: dict[str, Any]
) -> dict[str, Any]:
    return {
        **settings,
        "pairs": graph.pairs,
        "self_pairs_ignored": graph.self_pairs,
        "edges": len(graph.w),
        "records": graph.n,
        "groups": len(stats.size),
        "singletons": int((stats.size == 1).sum()),
        "largest_group_size": int(stats.size.max(initial=0)),
        "size_histogram": size_histogram(stats.size),
        "largest_groups": _largest(graph, clustering.groups, stats, carried),
        "cuts": cuts(graph, clustering, settings["threshold"], settings["max_group_size"]),
        "next_group_id": carried.next_group_id,
    }


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output Parquet file.")
@click.option("--left-id-col", default="query_id", show_default=True)
@click.option("--right-id-col", default="candidate_id", show_default=True)
@click.option("--score-col", default="score", show_default=True)
@click.option(
    "--threshold",
    type=FiniteFloat(0, 1, min_open=True),
    default=None,
    help=f"Match threshold [the scored files' metadata (key 'scorer', field 'threshold'), else {DEFAULT_THRESHOLD}].",
)
@click.option(
    "--previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An earlier run's GROUPS.parquet: its group ids carry forward.",
)
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Parquet with columns id, group: report pairwise and B-cubed P/R/F1.",
)
@click.option("--max-group-size", type=click.IntRange(min=2), default=100, show_default=True)
@click.option(
    "--max-component-pairs",
    type=click.IntRange(min=1),
    default=MAX_COMPONENT_PAIRS,
    show_default=True,
    help="Most scored pairs one component at the threshold may hold (memory: about 280 bytes a pair); a larger "
    "one is refused before any work.",
)
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write a JSON report here.")
def group(
    inputs: tuple[str, ...],
    output: Path,
    left_id_col: str,
    right_id_col: str,
    score_col: str,
    threshold: float | None,
    previous: Path | None,
    truth: Path | None,
    max_group_size: int,
    max_component_pairs: int,
    report: Path | None,
) -> None:
    """Group the records of scored pairs into duplicate groups, one output row per record id."""
    start = time.perf_counter()
    files = resolve_inputs(inputs)
    reads = [*files, *(Path(spec) for spec in inputs if Path(spec).is_dir()), *(p for p in (previous, truth) if p)]
    check_distinct({"-o/--output": output, "--report": report})
    check_file_target(output, reads, "-o/--output")
    if report is not None:
        check_file_target(report, reads, "--report")
    click.get_current_context().with_resource(OutputLock(output))  # held until the command ends
    ids = IdKind()
    scored = read_scored(files, left_id_col, right_id_col, score_col, ids)
    previous_groups = read_groups(previous, ids) if previous else None
    truth_data = read_truth(truth, ids) if truth else None
    threshold, source = _threshold(threshold, scored.thresholds)

    graph = build_graph(scored.left, scored.right, scored.scores)
    records, pairs = largest_component(graph, threshold)
    if pairs > max_component_pairs:
        raise InputError(
            f"{records:,} records are joined into one component by pairs scoring at least {threshold}, with "
            f"{pairs:,} scored pairs among them, over --max-component-pairs {max_component_pairs:,} (grouping them "
            f"would take about {pairs * BYTES_PER_PAIR / 1e9:.1f} GB): raise the threshold, or the limit"
        )
    clustering = cluster(graph, threshold, max_group_size)
    stats = group_stats(graph, clustering.groups, threshold)
    carried = carry_forward(graph.ids, clustering.groups, previous_groups)
    settings = {
        "inputs": [str(f) for f in files],
        "threshold": threshold,
        "threshold_source": source,
        "method": METHOD,
        "max_group_size": max_group_size,
    }
    result = _report(graph, clustering, stats, carried, settings)
    if carried.changes is not None:
        result["previous"] = {"file": str(previous), **carried.changes}
    if truth_data is not None:
        result["truth"] = {"file": str(truth), **against_truth(graph.ids, clustering, *truth_data)}
    table = _table(graph, clustering.groups, stats, carried, {**settings, "next_group_id": carried.next_group_id})
    with atomic_write(output) as tmp:
        pq.write_table(table, tmp)
    result["seconds"] = time.perf_counter() - start
    if report is not None:
        write_text_atomic(report, json.dumps(result, indent=2) + "\n")
    for line in _summary(result):
        click.echo(line, err=True)
