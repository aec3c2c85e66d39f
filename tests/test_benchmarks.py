"""The benchmark harness on tiny offline models: formulas by hand, measurement helpers, and the
throughput and scaling commands end to end (tiny inputs, one round)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import long_pairs_table

from benchmarks import ceiling, flops, mmbert_arch, scaling, throughput
from benchmarks.child import ChildFailed, run_child
from benchmarks.quality import compare
from scorer.artifact import load_manifest

MINILM_CONFIG = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
MMBERT_CONFIG = {"model_type": "modernbert", **mmbert_arch.MMBERT_SMALL}


def test_flops_of_minilm_by_hand() -> None:
    # per layer: 4*384^2 + 2*384*1536 = 1,769,472 weights; 6 layers -> 2*6*1,769,472 = 21,233,664 FLOPs/token
    # attention at 36 tokens: 6 layers * 4*36*384 = 331,776; head: 2*(384^2 + 384) = 295,680
    assert flops.flops_per_token(MINILM_CONFIG, 36) == 21_233_664 + 331_776
    assert flops.pair_flops(MINILM_CONFIG, 36) == 36 * 21_565_440 + 295_680 == 776_651_520


def test_flops_of_mmbert_small_by_hand() -> None:
    # per layer: 4*384^2 + 3*384*1152 = 1,916,928 weights; 22 layers -> 84,344,832 FLOPs/token
    assert flops.linear_params_per_layer(MMBERT_CONFIG) == 1_916_928
    # 300 tokens: 8 global layers (0, 3, ..., 21) span 300, 14 local layers span 128
    assert flops.attention_spans(MMBERT_CONFIG, 300).count(300) == 8
    assert flops.flops_per_token(MMBERT_CONFIG, 300) == 84_344_832 + 4 * 384 * (8 * 300 + 14 * 128)
    # 36 tokens (all layers span 36): 3.08 GFLOP/pair (the architecture's published cost: "about 3.0")
    assert flops.pair_flops(MMBERT_CONFIG, 36) == 36 * (84_344_832 + 22 * 4 * 36 * 384) + 2 * (384**2 + 384)
    lengths = np.array([36, 36, 300])
    assert flops.total_flops(MMBERT_CONFIG, lengths) == 2 * flops.pair_flops(MMBERT_CONFIG, 36) + flops.pair_flops(
        MMBERT_CONFIG, 300
    )


def test_matmul_integer_graph_computes_the_product() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(ceiling.matmul_integer_model(8, seed=3), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    b = np.random.default_rng(3).integers(-64, 64, (8, 8), dtype=np.int8)
    (y,) = session.run(None, {"A": a})
    np.testing.assert_array_equal(y, (a.astype(np.int32) - 128) @ b.astype(np.int32))


def test_st_padding_replays_predict_batches() -> None:
    queries, candidates = ["a", "bbbbbbbb", "cc", "dddd"], ["", "", "", ""]
    lengths = np.array([3, 10, 4, 6])
    # sorted by characters: 8, 4, 2, 1 chars -> lengths 10, 6, 4, 3; batches of 2: 2*10 + 2*4
    assert throughput.st_padding(queries, candidates, lengths, batch_size=2) == 28


def test_quality_figures() -> None:
    reference = np.array([0.9, 0.2, 0.6, 0.1])
    scores = np.array([0.8, 0.45, 0.4, 0.1])
    groups = np.array(["q1", "q1", "q2", "q2"])
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    q = compare(reference, scores, groups, labels)
    assert q["max_abs_diff"] == pytest.approx(0.25)
    assert q["flips"] == 1 and q["flip_rate"] == 0.25
    assert q["spearman"] == pytest.approx(0.8)
    assert q["ndcg_at_10"] == q["ndcg_at_10_reference"] == 1.0 and q["ndcg_at_10_delta"] == 0.0
    assert "ndcg_at_10" not in compare(reference, scores, groups, None)


def test_child_peak_rss_is_its_own(tmp_path: Path) -> None:
    allocate = "import numpy as np; a = np.ones(300_000_000 // 8); print(a.sum())"
    big = run_child([sys.executable, "-c", allocate], tmp_path / "big.log")
    small = run_child([sys.executable, "-c", "print(1)"], tmp_path / "small.log")
    assert big.peak_rss_mb > 300 > small.peak_rss_mb
    assert small.stdout.strip() == "1" and small.seconds > 0
    with pytest.raises(ChildFailed, match="boom"):
        run_child([sys.executable, "-c", "raise SystemExit('boom')"], tmp_path / "fail.log")


def test_mmbert_arch_has_mmbert_smalls_published_size() -> None:
    import torch
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    # mmBERT's model card: small = 140M parameters, 42M of them outside the embeddings
    with torch.device("meta"):
        model = ModernBertForSequenceClassification(ModernBertConfig(**mmbert_arch.MMBERT_SMALL, num_labels=1))
    total = sum(p.numel() for p in model.parameters())
    embeddings = model.model.embeddings.tok_embeddings.weight.numel()
    assert total == pytest.approx(140e6, rel=0.01) and total - embeddings == pytest.approx(42e6, rel=0.01)
    assert 22 * flops.linear_params_per_layer(MMBERT_CONFIG) == pytest.approx(total - embeddings, rel=0.005)


def test_tiny_mmbert_arch_scores_like_a_cross_encoder(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    directory = mmbert_arch.build(tmp_path / "tiny", tiny=True)
    config = json.loads((directory / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["vocab_size"]) == ("modernbert", 2, 256000)
    scores = CrossEncoder(str(directory), device="cpu").predict([("a red shoe", "red shoe"), ("tea", "laptop")])
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))


def test_throughput_skips_absent_data(bert: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, artifact = bert
    args = ["--data", tmp_path / "absent.parquet", "--checkpoint", checkpoint, "--artifact", artifact]
    result = CliRunner().invoke(throughput.main, [str(a) for a in [*args, "--out", tmp_path / "out"]])
    assert result.exit_code == 0, result.output
    assert "no such file" in result.output and "nothing measured" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def throughput_report(bert: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One real run of the harness: tiny BERT, 200 labelled pairs, one round (each path a fresh process)."""
    checkpoint, artifact = bert
    root = tmp_path_factory.mktemp("throughput")
    data = root / "pairs.parquet"
    pq.write_table(long_pairs_table(200, seed=5), data)
    out = root / "results"
    args = ["--data", data, "--checkpoint", checkpoint, "--artifact", artifact, "--out", out]
    args += [
        "--repeats",
        "1",
        "--rows",
        "150",
        "--ceiling-size",
        "128",
        "--name",
        "tiny-bert",
        "--note",
        "Tiny random model.",
    ]
    result = CliRunner().invoke(throughput.main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "throughput.json").read_text())


@pytest.mark.slow  # four fresh processes, three of them import torch; about a minute on 2 cores
def test_throughput_writes_markdown_json_and_chart(throughput_report: tuple[Path, dict]) -> None:
    out, report = throughput_report
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "throughput.md").read_text()
    assert (
        "Tiny random model." in text
        and "scorer int8 / torch" in text
        and "scorer int8 / ST ONNX int8" in text
        and "throughput.png" in text
    )
    assert report["data"]["rows"] == 150 and report["repeats"] == 1
    assert set(report["ratios"]) >= {"scorer_int8_vs_torch", "scorer_int8_vs_st_onnx_int8"}
    assert len(report["targets"]) == 5
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    for target in report["targets"]:
        assert rows[target["name"]].endswith("| yes |" if target["met"] else "| **NO** |")


@pytest.mark.slow
def test_throughput_numbers_are_sane(throughput_report: tuple[Path, dict], bert: tuple[Path, Path]) -> None:
    _, report = throughput_report
    paths: dict[str, dict[str, Any]] = {p["name"]: p for p in report["paths"]}
    manifest = load_manifest(bert[1])  # the OpenVINO paths run where their variant passed its gate and runs here
    expected = ["torch", "st_onnx_int8", "scorer_fp32", "scorer_int8"]
    expected += ["torch_bf16", "scorer_bf16", "scorer_auto"] if throughput.runs_here(manifest, "bf16") else []
    expected += ["scorer_int8_openvino"] if throughput.runs_here(manifest, "int8-openvino") else []
    assert list(paths) == expected
    for p in paths.values():
        assert p["pairs_per_s"] > 0 and p["tokens_per_s"] > p["pairs_per_s"]
        assert p["scoring_pairs_per_s"] >= p["pairs_per_s"] and p["peak_rss_mb"] > 50
        assert 0 < p["padding_efficiency"] <= 1 and 0 < p["ceiling_fraction"]
        q = p["quality"]
        assert q["flip_rate"] == pytest.approx(q["flips"] / report["data"]["rows"])
        assert q["ndcg_at_10"] == pytest.approx(q["ndcg_at_10_reference"] + q["ndcg_at_10_delta"])
    fp32 = paths["scorer_fp32"]["quality"]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["flips"] == 0 and fp32["spearman"] > 0.9999
    ratio = paths["scorer_int8"]["pairs_per_s"] / paths["torch"]["pairs_per_s"]
    assert report["ratios"]["scorer_int8_vs_torch"] == pytest.approx(ratio)


def test_scaling_end_to_end(bert: tuple[Path, Path], tmp_path: Path) -> None:
    _, artifact = bert
    out = tmp_path / "scaling"
    args = ["--artifact", artifact, "--out", out, "--rows", "300", "--rows", "60", "--note", "tiny model"]
    result = CliRunner().invoke(scaling.main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "scaling.json").read_text())
    assert [r["rows"] for r in report["runs"]] == [60, 300]
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 50 for r in report["runs"])
    assert "tiny model" in (out / "scaling.md").read_text() and (out / "scaling.png").is_file()


def test_op_profile_splits_the_time(bert: tuple[Path, Path], tmp_path: Path) -> None:
    from benchmarks import op_profile

    _, artifact = bert
    data = tmp_path / "pairs.parquet"
    pq.write_table(long_pairs_table(40, seed=2), data)
    args = ["--artifact", artifact, "--precision", "int8", "--data", data, "--rows", "30", "--out", tmp_path]
    result = CliRunner().invoke(op_profile.main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "op_profile-int8.json").read_text())
    assert report["pairs"] == 30 and report["run_s"] > 0 and 0 < report["kernel_s"] <= report["run_s"]
    assert any("MatMul" in name for name in report["ops"]) and "| op type |" in result.output


def test_st_onnx_cache_is_keyed_by_checkpoint(tmp_path: Path) -> None:
    from benchmarks.st_onnx import cache_dir

    one, two = tmp_path / "one", tmp_path / "two"
    for directory in (one, two):
        directory.mkdir()
        (directory / "config.json").write_text("{}")
    assert cache_dir(tmp_path, one) == cache_dir(tmp_path, one) != cache_dir(tmp_path, two)
    before = cache_dir(tmp_path, one)
    (one / "model.safetensors").write_bytes(b"retrained")
    assert cache_dir(tmp_path, one) != before


def test_reproduce_skips_without_data_and_checks_steps(tmp_path: Path) -> None:
    from benchmarks import reproduce

    runner = CliRunner()
    absent = runner.invoke(reproduce.main, ["--data", str(tmp_path / "none"), "--work", str(tmp_path / "w")])
    assert absent.exit_code == 0 and "skipped: no product data" in absent.output
    assert not (tmp_path / "w").exists()
    unknown = runner.invoke(reproduce.main, ["--data", str(tmp_path), "--steps", "quality,speed"])
    assert unknown.exit_code == 2 and "unknown step(s) speed" in unknown.output


def test_every_report_names_the_command_and_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.harness import header, machine_line, write_report
    from scorer.precision import cpu_info

    monkeypatch.setattr(sys, "argv", ["nightly.py", "--data", "../shared data"])
    result = header("benchmarks.nightly")
    assert result["command"] == "python -m benchmarks.nightly --data '../shared data'"
    assert result["machine"]["cpu"] == cpu_info().model and result["machine"]["logical_cpus"] >= 1
    assert result["machine"]["versions"]["pyarrow"] == pa_version()
    assert cpu_info().model in machine_line(result)
    written = write_report(tmp_path / "out", "nightly", {**result, "ratio": 0.5}, "# report\n")
    assert written.read_text() == "# report\n"
    assert json.loads((tmp_path / "out" / "nightly.json").read_text())["ratio"] == 0.5
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nightly.json", "nightly.md"]


def pa_version() -> str:
    import pyarrow

    return pyarrow.__version__


def test_recall_by_origin_splits_the_true_pairs(tmp_path: Path) -> None:
    import pyarrow as pa

    from benchmarks import candidates, embedder_transfer

    truth, pairs = tmp_path / "truth.parquet", tmp_path / "pairs.parquet"
    # one group {a, b, c} (3 pairs) and one {d, e}; a-b is a test positive, b-c a train positive, so a-c and d-e
    # are joined only transitively (d-e: its label fell in no split we were given)
    pq.write_table(pa.table({"id": list("abcde"), "group": ["g", "g", "g", "h", "h"]}), truth)
    pq.write_table(pa.table({"query_id": ["b", "d"], "candidate_id": ["a", "e"]}), pairs)
    positives = {"test": {("a", "b")}, "train": {("b", "c")}, "valid": set()}
    true = embedder_transfer.true_pairs(truth)
    missed = true - candidates.found_pairs(pairs)
    assert missed == {("a", "c"), ("b", "c")}
    by_origin = embedder_transfer.recall_by_origin(true, missed, positives)
    assert by_origin == {
        "test": {"pairs": 1, "recall": 1.0},
        "train+valid": {"pairs": 1, "recall": 0.0},
        "transitive": {"pairs": 2, "recall": 0.5},
    }
    audit = tmp_path / "audit.csv"
    titles = dict(zip("abcde", "ABCDE", strict=True))
    embedder_transfer.write_audit(audit, missed, true - missed, titles, positives, size=5)
    rows = audit.read_text().splitlines()
    assert rows[0].startswith("left_id,right_id,found,origin") and sorted(rows[1:]) == [
        "a,b,yes,test,A,B,",
        "a,c,no,transitive,A,C,",
        "b,c,no,train+valid,B,C,",
        "d,e,yes,transitive,D,E,",
    ]


@pytest.fixture
def three_datasets(tmp_path: Path) -> Path:
    """A data folder of three tiny pair datasets; each test split repeats one of its train pairs."""
    import pyarrow as pa

    for index, name in enumerate(("alpha", "beta", "gamma")):
        folder = tmp_path / "pairs" / name
        folder.mkdir(parents=True)
        for split, rows in (("train", 30), ("valid", 12), ("test", 9)):
            queries = [f"{name} {split} q{i}" for i in range(rows)]
            labels = [int(i % 3 == 0) for i in range(rows)]
            if split == "test":
                queries[0] = f"{name} train q0"  # also in train: must leave every test split
            table = pa.table(
                {
                    "query": queries,
                    "candidate": [f"c{i}" for i in range(rows)],
                    "query_text": [f"{q} brand{index}" for q in queries],
                    "candidate_text": [f"c{i} brand{index}" for i in range(rows)],
                    "label": pa.array(labels, pa.int8()),
                }
            )
            pq.write_table(table, folder / f"{split}.parquet")
    return tmp_path


def test_model_quality_protocols_train_and_test_on_the_right_splits(three_datasets: Path) -> None:
    from benchmarks.model_quality import plan

    per = plan(three_datasets, "per-dataset", "beta", "titles", cap=1200, seed=1)
    assert per["sources"] == ["beta"] and per["train"].num_rows == 30 and per["valid"].num_rows == 12
    assert list(per["tests"]) == ["beta"] and per["tests"]["beta"].num_rows == 8 and per["valids"] == {}
    joint = plan(three_datasets, "joint", "beta", "records", cap=1200, seed=1)
    assert joint["sources"] == ["alpha", "beta", "gamma"] and joint["train"].num_rows == 90
    assert set(joint["tests"]) == set(joint["valids"]) == {"alpha", "beta", "gamma"}
    assert joint["train"]["query"][0].as_py() == "alpha train q0 brand0"  # records: the *_text columns
    held_out = plan(three_datasets, "leave-one-out", "beta", "titles", cap=9, seed=1)
    assert held_out["sources"] == ["alpha", "gamma"] and list(held_out["tests"]) == ["beta"]
    assert held_out["train"].num_rows == 18  # at most 9 a source: 3 matches, 6 non-matches
    assert held_out["train"]["label"].to_pylist().count(1) == 6
    assert not any(q.startswith("beta") for q in held_out["train"]["query"].to_pylist())


def test_model_quality_test_splits_drop_pairs_seen_in_train(three_datasets: Path) -> None:
    from benchmarks.model_quality import dedup_test, split

    train, test = (split(three_datasets, "alpha", name, "titles") for name in ("train", "test"))
    kept = dedup_test(train, test)
    assert kept.num_rows == 8 and "alpha train q0" not in kept["query"].to_pylist()


def test_model_quality_ablation_compares_each_run_with_the_recipe_on_titles() -> None:
    from benchmarks.model_quality import ablation

    def run(f1: float, valid: float) -> dict[str, Any]:
        return {"tests": {"abt-buy": {"f1": f1}}, "valid_f1": valid}

    runs = {
        "per-dataset/abt-buy/titles/pairs/15 min": run(0.80, 0.79),
        "per-dataset/abt-buy/titles/pairs/10 min": run(0.70, 0.72),
        "per-dataset/abt-buy/records/pairs/40 min": run(0.85, 0.84),  # no 40-min recipe run: the 15-min one
        "per-dataset/abt-buy/titles/pairs+intermediate/10 min": run(0.90, 0.80),  # the 10-min recipe run
        "per-dataset/walmart-amazon/titles/seed/15 min": run(0.5, 0.5),  # no recipe run to compare with
        "joint/all/titles/pairs/40 min": run(0.9, 0.9),
    }
    rows = [line for line in ablation(runs) if line.startswith("| abt-buy")]
    assert rows == [
        "| abt-buy | records, pairs, 40 min | 0.850 | 0.800 (15 min) | +0.050 | +0.050 |",
        "| abt-buy | titles, pairs+intermediate, 10 min | 0.900 | 0.700 (10 min) | +0.200 | +0.080 |",
        "| abt-buy | titles, pairs, 10 min | 0.700 | 0.800 (15 min) | -0.100 | -0.070 |",
    ]


def test_model_quality_counts_an_intermediate_runs_starting_checkpoint(tmp_path: Path) -> None:
    from benchmarks.model_quality import markdown, starting_point

    start = tmp_path / "joint"
    start.mkdir()
    (start / "metrics.json").write_text(
        json.dumps({"train": {"files": [["j/train.parquet", "pairs"]], "seconds": 2520}})
    )
    assert starting_point(None) is None
    point = starting_point(start)
    assert point == {"checkpoint": str(start), "files": ["j/train.parquet"], "seconds": 2520}
    test = {"f1": 0.86, "precision": 0.9, "recall": 0.82}
    run = {
        "protocol": "per-dataset", "sources": ["wdc-shoes"], "train_pairs": 4000, "start_from": point,
        "tests": {"wdc-shoes": test}, "valid_f1": 0.85, "epochs": 2.0, "stopped": "time budget", "best": None,
        "pairs_per_s": None, "seconds": 600, "cpu_seconds": 590, "command": "python -m benchmarks.model_quality",
    }  # fmt: skip
    machine = {"cpu": "a CPU", "logical_cpus": 2}
    report = {"runs": {"per-dataset/wdc-shoes/titles/pairs+intermediate/10 min": run}, "command": "c", "created": "t"}
    report["machine"] = machine
    row = next(line for line in markdown(report).splitlines() if line.startswith("| wdc-shoes"))
    assert f"after `{start}` (42.0 min of training)" in row and "| 10.0 + 42.0 min |" in row


def test_model_quality_separates_the_transferred_thresholds_cost() -> None:
    from benchmarks.model_quality import threshold_transfer, transfer_table

    class Scores:
        def predict(self, texts: list[tuple[str, str]], **kwargs: object) -> list[float]:
            return [0.2, 0.4, 0.6, 0.97, 0.98, 0.99][: len(texts)]

    valid = pa.table({"query": list("abcdef"), "candidate": list("uvwxyz"), "label": [0, 0, 1, 1, 0, 1]})
    transfer = threshold_transfer(valid, Scores(), threshold=0.95)
    assert transfer["f1_at_sources_threshold"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # 2 of 3 right
    assert transfer["precision_at_sources_threshold"] == pytest.approx(2 / 3)
    assert transfer["best_f1"] > transfer["f1_at_sources_threshold"] and transfer["best_threshold"] < 0.95
    runs = {"leave-one-out/abt-buy/titles/pairs/25 min": {"tests": {"abt-buy": {"f1": 0.6, "transfer": transfer}}}}
    row = transfer_table(runs)[-2]
    assert row.startswith("| abt-buy | titles | 0.950 | 0.667 | 0.667 |")
    assert transfer_table({"per-dataset/abt-buy/titles/pairs/15 min": {"tests": {"abt-buy": {"f1": 0.8}}}}) == []


def test_reproduce_runs_every_step_through_existing_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from benchmarks import reproduce

    commands: list[list[str]] = []
    monkeypatch.setattr(reproduce, "_command", lambda log: lambda *args: commands.append([str(a) for a in args]))
    titles = tmp_path / "data" / "pairs" / "abt-buy" / "test.parquet"
    titles.parent.mkdir(parents=True)
    titles.touch()
    args = ["--data", str(tmp_path / "data"), "--work", str(tmp_path / "w"), "--results", str(tmp_path / "r")]
    assert CliRunner().invoke(reproduce.main, args).exit_code == 0
    modules = {command[0] for command in commands}
    assert all(importlib.util.find_spec(module) is not None for module in modules), modules
    runs = len(reproduce.QUALITY_RUNS) + len(reproduce.INTERMEDIATE_RUNS) + 1  # and the speed run
    assert sum(command[0] == "benchmarks.model_quality" for command in commands) == runs
    started = [command for command in commands if "--start-from" in command]
    assert len(started) == len(reproduce.INTERMEDIATE_RUNS)
    for command in started:  # each fine-tunes the joint checkpoint of its own variant, which a quality run trains
        variant = command[command.index("--variant") + 1]
        assert ("joint", "abt-buy", "titles", variant, 40) in reproduce.QUALITY_RUNS
        assert command[command.index("--start-from") + 1].endswith(f"joint/all/titles/{variant}/40-min/checkpoint")
    labels = [command[command.index("--label") + 1] for command in commands if "--label" in command]
    assert labels == ["default-export", "default-export", "calibrated-export"]  # the committed op-profile names
    outputs = {Path(c[c.index("--out") + 1]).name for c in commands if "--out" in c}
    committed = {p.name for p in Path("benchmarks/results").iterdir()}
    assert outputs - {"op-profile"} <= committed, outputs - committed


def test_model_quality_keeps_the_records_other_runs_wrote_while_it_trained(
    three_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import model_quality

    out = tmp_path / "report"
    figures = {"tests": {"beta": {"f1": 0.5, "precision": 0.5, "recall": 0.5, "pairs": 8, "threshold": 0.5}}}
    record = figures | {
        "protocol": "per-dataset",
        "sources": ["beta"],
        "train_pairs": 30,
        "valid_f1": 0.5,
        "epochs": 1.0,
        "stopped": "time budget",
        "best": None,
        "pairs_per_s": None,
        "seconds": 60.0,
        "cpu_seconds": 50.0,
        "command": "python -m benchmarks.model_quality --dataset alpha",
    }

    def trained_while_another_run_finished(*args: object, **kwargs: object) -> dict:
        other = model_quality.read_report(out)
        other["runs"]["per-dataset/alpha/titles/pairs/15 min"] = record
        other |= model_quality.header("benchmarks.model_quality")
        model_quality.write_report(out, model_quality.NAME, other, model_quality.markdown(other))
        return record

    monkeypatch.setattr(model_quality, "run_protocol", trained_while_another_run_finished)
    args = ["--data", str(three_datasets), "--dataset", "beta", "--out", str(out), "--work", str(tmp_path / "w")]
    result = CliRunner().invoke(model_quality.main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = model_quality.read_report(out)["runs"]
    assert set(runs) == {"per-dataset/alpha/titles/pairs/15 min", "per-dataset/beta/titles/pairs/15 min"}


def test_model_quality_adds_the_variants_f1_to_an_earlier_run(
    three_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import model_quality

    out, work = tmp_path / "report", tmp_path / "w"
    key = "per-dataset/beta/titles/pairs/15 min"
    directory = model_quality.run_directory(work, key)
    directory.mkdir(parents=True)
    pq.write_table(
        pa.table({"query": ["a", "b", "c", "d"], "label": pa.array([1, 1, 0, 0], pa.int8())}),
        directory / "beta.parquet",
    )
    test = {"f1": 1.0, "precision": 1.0, "recall": 1.0, "pairs": 4, "threshold": 0.5}
    report = {"runs": {key: {"tests": {"beta": test}}}, "speed": {}}
    (out / "model_quality.json").parent.mkdir()
    (out / "model_quality.json").write_text(json.dumps(report))
    monkeypatch.setattr(model_quality, "markdown", lambda report: "")
    scored = {"beta": np.array([0.9, 0.4, 0.6, 0.1])}  # one match missed, one non-match taken: F1 0.5

    def scored_while_another_run_finished(checkpoint: Path, work: Path, tests: dict) -> tuple[str, dict]:
        other = model_quality.read_report(out)
        other["runs"]["per-dataset/alpha/titles/pairs/15 min"] = {"tests": {}}
        (out / "model_quality.json").write_text(json.dumps(other))
        return "bf16", scored

    monkeypatch.setattr(model_quality, "_variant_scores", scored_while_another_run_finished)
    args = ["--data", str(three_datasets), "--dataset", "beta", "--out", str(out), "--work", str(work)]
    result = CliRunner().invoke(model_quality.main, [*args, "--variant-f1-only"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = model_quality.read_report(out)["runs"][key]
    assert run["variant"] == "bf16" and run["tests"]["beta"]["variant_f1"] == pytest.approx(0.5)
    assert "per-dataset/alpha/titles/pairs/15 min" in model_quality.read_report(out)["runs"]
    absent = CliRunner().invoke(model_quality.main, [*args, "--variant-f1-only", "--budget", "40"])
    assert absent.exit_code == 2 and "no run 'per-dataset/beta/titles/pairs/40 min'" in absent.output
