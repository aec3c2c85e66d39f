"""`scorer group`: chaining cut, threshold sources, truth metrics, id carry-forward, size cap, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import invoke

from benchmarks.grouping import main as benchmark
from scorer.grouping.cluster import cluster
from scorer.grouping.edges import build_graph
from scorer.grouping.linkage import average_linkage, greedy_merges

Pair = tuple[object, object, float]


def clique(ids: list[object], score: float = 0.9) -> list[Pair]:
    return [(a, b, score) for a, b in combinations(ids, 2)]


def write_scored(path: Path, pairs: list[Pair], threshold: float | None = None) -> Path:
    table = pa.table(
        {
            "query_id": [a for a, _, _ in pairs],
            "candidate_id": [b for _, b, _ in pairs],
            "score": pa.array([s for _, _, s in pairs], pa.float32()),
        }
    )
    if threshold is not None:
        table = table.replace_schema_metadata({b"scorer": json.dumps({"threshold": threshold})})
    pq.write_table(table, path)
    return path


def groups_of(path: Path) -> dict[object, int]:
    table = pq.read_table(path).to_pydict()
    return dict(zip(table["id"], table["group_id"], strict=True))


# Two 4-cliques joined by one false positive that outscores every true pair; a pair below the threshold
# (9, 10); a self-pair (11, 11).
CHAINED = [*clique([1, 2, 3, 4]), *clique([5, 6, 7, 8]), (4, 5, 0.95), (9, 10, 0.2), (11, 11, 0.99)]


def test_false_positive_edge_is_cut(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", CHAINED, threshold=0.5)
    result = invoke("group", scored, "-o", tmp_path / "groups.parquet", "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "groups.parquet").to_pydict()
    assert table["id"] == list(range(1, 12))
    assert table["group_id"] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4]
    assert table["group_size"] == [4] * 8 + [1] * 3
    assert table["min_edge_score"][:8] == pytest.approx([0.9] * 8)
    assert table["min_edge_score"][8:] == table["mean_edge_score"][8:] == [None] * 3
    assert table["mean_edge_score"][:8] == pytest.approx([0.9] * 8)
    assert table["edge_density"] == [1.0] * 8 + [None] * 3
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["threshold"] == 0.5 and report["threshold_source"].startswith("metadata of")
    assert (report["records"], report["pairs"], report["edges"], report["self_pairs_ignored"]) == (11, 15, 14, 1)
    assert report["size_histogram"] == {"1": 3, "4": 2}
    assert report["singletons"] == 3
    assert [g["size"] for g in report["largest_groups"]] == [4, 4]
    cuts = report["cuts"]
    assert (cuts["components"], cuts["largest_component"], cuts["components_split"]) == (4, 8, 1)
    assert (cuts["matching_edges"], cuts["matching_edges_cut"]) == (13, 1)
    assert cuts["max_cut_edge_score"] == pytest.approx(0.95)
    assert "1 of 4 components split" in result.output


def test_average_linkage_alone_keeps_the_false_positive() -> None:
    """Why the single-record moves exist: the false positive outscores the true pairs, so it merges first."""
    graph = build_graph(
        [pa.array([a for a, _, _ in CHAINED])],
        [pa.array([b for _, b, _ in CHAINED])],
        np.array([s for *_, s in CHAINED]),
    )
    linkage_only = cluster(graph, 0.5, 100, refine_rounds=0)
    assert np.bincount(linkage_only.groups).tolist() == [3, 2, 3, 1, 1, 1]
    full = cluster(graph, 0.5, 100)
    assert full.groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4]
    assert full.moves == 2


def test_linkage_rounds_equal_the_greedy_algorithm() -> None:
    """Reciprocal-best-pair rounds give the merges of the textbook greedy average linkage (random graphs)."""
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(5, 60))
        a, b = rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n)
        key = np.unique(np.minimum(a, b)[a != b] * n + np.maximum(a, b)[a != b])
        u, v, w = key // n, key % n, rng.uniform(0, 1, len(key))
        greedy = np.arange(n)
        for kept, absorbed in reversed(greedy_merges(u, v, w, np.ones(n, dtype=np.int64), 0.4, 1000)):
            greedy[absorbed] = greedy[kept]
        assert average_linkage(n, u, v, w, 0.4, 1000)[0].tolist() == greedy.tolist()


def test_monotone_chain_hands_over_to_the_heap() -> None:
    """Scores falling along a chain merge one pair per round; the heap finishes it instead."""
    n = 5000
    roots, rounds = average_linkage(n, np.arange(n - 1), np.arange(1, n), np.linspace(0.99, 0.6, n - 1), 0.5, 100)
    assert rounds == 1
    assert roots.tolist() == np.repeat(np.arange(0, n, 2), 2).tolist()


def test_threshold_sources(tmp_path: Path) -> None:
    pairs = [(1, 2, 0.7), (3, 4, 0.4)]
    with_metadata = write_scored(tmp_path / "a.parquet", pairs, threshold=0.8)
    plain = write_scored(tmp_path / "b.parquet", pairs)
    cases = [
        ((with_metadata,), (), 0.8, 4),
        ((with_metadata,), ("--threshold", "0.6"), 0.6, 3),
        ((plain,), (), 0.5, 3),
        ((plain,), ("--threshold", "0.3"), 0.3, 2),
    ]
    for index, (inputs, flags, threshold, groups) in enumerate(cases):
        report = tmp_path / f"report-{index}.json"
        result = invoke("group", *inputs, "-o", tmp_path / f"g{index}.parquet", "--report", report, *flags)
        assert result.exit_code == 0, result.output
        data = json.loads(report.read_text())
        assert (data["threshold"], data["groups"]) == (threshold, groups)
    assert json.loads((tmp_path / "report-2.json").read_text())["threshold_source"].startswith("default")
    other = write_scored(tmp_path / "c.parquet", pairs, threshold=0.6)
    result = invoke("group", with_metadata, other, "-o", tmp_path / "g.parquet")
    assert result.exit_code == 2 and "disagree on the threshold" in result.output


def test_truth_metrics_against_connected_components(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", CHAINED)
    truth = tmp_path / "truth.parquet"  # 9 and 10 are one product scored below the threshold; 11 is not listed
    pq.write_table(pa.table({"id": list(range(1, 11)), "group": ["a"] * 4 + ["b"] * 4 + ["c"] * 2}), truth)
    report = tmp_path / "report.json"
    result = invoke("group", scored, "-o", tmp_path / "groups.parquet", "--truth", truth, "--report", report)
    assert result.exit_code == 0, result.output
    found = json.loads(report.read_text())["truth"]
    assert (found["records"], found["scored_records_without_truth"], found["truth_records_not_scored"]) == (11, 1, 0)
    # groups {1-4} {5-8} {9} {10} {11}: B-cubed P 1, R (8 + 0.5 + 0.5 + 1) / 11; pairwise 12 of 12 found, 13 true
    assert found["groups"] == pytest.approx(
        {
            "bcubed_precision": 1.0,
            "bcubed_recall": 10 / 11,
            "bcubed_f1": 20 / 21,
            "pairwise_precision": 1.0,
            "pairwise_recall": 12 / 13,
            "pairwise_f1": 24 / 25,
        }
    )
    # components {1-8} {9} {10} {11}: B-cubed P (8 x 0.5 + 3) / 11; pairwise 12 of 28 predicted pairs
    assert found["connected_components"] == pytest.approx(
        {
            "bcubed_precision": 7 / 11,
            "bcubed_recall": 10 / 11,
            "bcubed_f1": 140 / 187,
            "pairwise_precision": 3 / 7,
            "pairwise_recall": 12 / 13,
            "pairwise_f1": 72 / 123,
        }
    )
    assert "B-cubed F1 0.9524 (connected components 0.7487)" in result.output


NIGHT_1 = [*clique(["a1", "a2", "a3"]), *clique(["b1", "b2"]), *clique(["c1", "c2", "c3", "c4"]), *clique(["d1", "d2"])]
# a and b merge, c splits in two, d stays, e is new
NIGHT_2 = [
    *clique(["a1", "a2", "a3", "b1", "b2"]),
    *clique(["c1", "c2"]),
    *clique(["c3", "c4"]),
    ("c2", "c3", 0.1),
    *clique(["d1", "d2"]),
    *clique(["e1", "e2"]),
]


def test_previous_carries_group_ids(tmp_path: Path) -> None:
    g1, g2, g3, g4 = (tmp_path / f"groups-{n}.parquet" for n in range(1, 5))
    assert invoke("group", write_scored(tmp_path / "n1.parquet", NIGHT_1), "-o", g1).exit_code == 0
    assert groups_of(g1) == {
        "a1": 0,
        "a2": 0,
        "a3": 0,
        "b1": 1,
        "b2": 1,
        **dict.fromkeys(["c1", "c2", "c3", "c4"], 2),
    } | {
        "d1": 3,
        "d2": 3,
    }
    report = tmp_path / "report.json"
    result = invoke(
        "group", write_scored(tmp_path / "n2.parquet", NIGHT_2), "-o", g2, "--previous", g1, "--report", report
    )
    assert result.exit_code == 0, result.output
    # the merged group keeps a's id (3 shared records against 2); c's id goes to {c1, c2} (tie: smaller group);
    # fresh ids start after the largest previous id, in group order
    assert groups_of(g2) == {
        **dict.fromkeys(["a1", "a2", "a3", "b1", "b2"], 0),
        "c1": 2,
        "c2": 2,
        "c3": 4,
        "c4": 4,
        "d1": 3,
        "d2": 3,
        "e1": 5,
        "e2": 5,
    }
    changes = json.loads(report.read_text())["previous"]
    assert {k: changes[k] for k in ("records_kept", "records_added", "records_removed", "moved_records")} == {
        "records_kept": 11,
        "records_added": 2,
        "records_removed": 0,
        "moved_records": 4,
    }
    assert (changes["merges"], changes["merged_groups"]) == (1, [{"group_id": 0, "from": [0, 1]}])
    assert (changes["splits"], changes["split_groups"]) == (1, [{"previous_group_id": 2, "into": [2, 4]}])
    assert (changes["ids_kept"], changes["ids_issued"], changes["ids_retired"]) == (3, 2, 1)
    assert sorted((m["id"], m["from"], m["to"]) for m in changes["moved_sample"]) == [
        ("b1", 1, 0),
        ("b2", 1, 0),
        ("c3", 2, 4),
        ("c4", 2, 4),
    ]
    # night 3 drops e (id 5, the largest); night 4 adds f: its id is 6, never 5 again
    night_3 = [p for p in NIGHT_2 if p[0] != "e1"]
    assert invoke("group", write_scored(tmp_path / "n3.parquet", night_3), "-o", g3, "--previous", g2).exit_code == 0
    assert max(groups_of(g3).values()) == 4
    night_4 = [*night_3, ("f1", "f2", 0.9)]
    assert invoke("group", write_scored(tmp_path / "n4.parquet", night_4), "-o", g4, "--previous", g3).exit_code == 0
    assert groups_of(g4)["f1"] == 6 and groups_of(g4)["a1"] == 0


def test_size_cap_cuts_a_complete_group(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", clique([0, 1, 2, 3, 4]))
    report = tmp_path / "report.json"
    result = invoke("group", scored, "-o", tmp_path / "g.parquet", "--max-group-size", "3", "--report", report)
    assert result.exit_code == 0, result.output
    assert list(groups_of(tmp_path / "g.parquet").values()) == [0, 0, 0, 1, 1]
    data = json.loads(report.read_text())
    assert data["cuts"]["merges_refused_by_cap"] == 1 and data["size_histogram"] == {"2": 1, "3": 1}


def _write(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing id column", "column 'candidate_id' not found"),
        ("missing score column", "column 'score' not found"),
        ("null id", "column 'query_id', row 1: null id"),
        ("score outside [0, 1]", "column 'score', row 1: score 2.5 is not within [0, 1]"),
        ("mixed id types", "holds string ids but"),
        ("previous of another schema", "column 'group_id' not found"),
        ("previous with other id type", "holds string ids but"),
        ("output is an input", "which this command reads"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, case: str, message: str) -> None:
    good = write_scored(tmp_path / "good.parquet", [(1, 2, 0.9)])
    output = tmp_path / "groups.parquet"
    args: list[object] = [good]
    if case == "missing id column":
        args = [_write(tmp_path / "bad.parquet", {"query_id": [1], "score": [0.9]})]
    elif case == "missing score column":
        args = [_write(tmp_path / "bad.parquet", {"query_id": [1], "candidate_id": [2]})]
    elif case == "null id":
        args = [_write(tmp_path / "bad.parquet", {"query_id": [1, None], "candidate_id": [2, 3], "score": [0.9, 0.9]})]
    elif case == "score outside [0, 1]":
        args = [_write(tmp_path / "bad.parquet", {"query_id": [1, 2], "candidate_id": [2, 3], "score": [0.9, 2.5]})]
    elif case == "mixed id types":
        args = [good, write_scored(tmp_path / "strings.parquet", [("x", "y", 0.9)])]
    elif case == "previous of another schema":
        args = [good, "--previous", _write(tmp_path / "prev.parquet", {"id": [1], "group": [0]})]
    elif case == "previous with other id type":
        args = [good, "--previous", _write(tmp_path / "prev.parquet", {"id": ["1"], "group_id": [0]})]
    elif case == "output is an input":
        output = good
    before = good.read_bytes()
    result = invoke("group", *args, "-o", output)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert good.read_bytes() == before
    assert not (tmp_path / "groups.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_group_does_not_import_torch(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", CHAINED)
    probe = (
        "import sys; from scorer.main import main; main(sys.argv[1:], standalone_mode=False); "
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "group", str(scored), "-o", str(tmp_path / "g.parquet")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_benchmark_skips_quality_without_data(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(benchmark, ["--data", str(tmp_path / "absent"), "--out", str(out), "--pairs", "2000"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "grouping.json").read_text())
    assert report["quality"] == [] and "no pairs/*/test.parquet" in report["quality_skipped"]
    night = report["scale"]["runs"]["night_2"]["report"]
    assert (
        night["records"] == 200
        and night["truth"]["groups"]["bcubed_f1"] > night["truth"]["connected_components"]["bcubed_f1"]
    )


def test_group_ids_near_the_int64_limit_and_bad_metadata_exit_2(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", [(1, 2, 0.9), (3, 4, 0.9)], threshold=0.5)
    previous = tmp_path / "previous.parquet"
    pq.write_table(pa.table({"id": [1, 2], "group_id": pa.array([2**63 - 1] * 2, pa.int64())}), previous)
    full = invoke("group", scored, "-o", tmp_path / "g.parquet", "--previous", previous)
    assert full.exit_code == 2 and "leaving no room below 2**63 for 1 new groups" in full.output
    table = pa.table({"id": [1, 2], "group_id": [0, 0]})
    pq.write_table(table.replace_schema_metadata({b"scorer.group": b'{"next_group_id": "7"}'}), previous)
    odd = invoke("group", scored, "-o", tmp_path / "g.parquet", "--previous", previous)
    assert odd.exit_code == 2 and "its next_group_id metadata '7' is not a group id" in odd.output
    table = pq.read_table(scored)
    bad = table.replace_schema_metadata({b"scorer": json.dumps({"threshold": "0.5"}).encode()})
    pq.write_table(bad, tmp_path / "bad.parquet")
    text = invoke("group", tmp_path / "bad.parquet", "-o", tmp_path / "g.parquet")
    assert text.exit_code == 2 and "the threshold its metadata records, '0.5', is not a number in (0, 1]" in text.output
    assert not (tmp_path / "g.parquet").exists()


def test_a_component_over_the_pair_bound_is_refused_before_any_work(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored.parquet", [*clique(list(range(60)), 0.9), (100, 101, 0.9)], 0.5)
    refused = invoke("group", scored, "-o", tmp_path / "g.parquet", "--max-component-pairs", "1000")
    assert refused.exit_code == 2 and "60 records are joined into one component" in refused.output
    assert "1,770 scored pairs among them, over --max-component-pairs 1,000" in refused.output
    assert not (tmp_path / "g.parquet").exists()
    assert invoke("group", scored, "-o", tmp_path / "g.parquet", "--max-component-pairs", "1770").exit_code == 0
