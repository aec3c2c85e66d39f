"""OpenVINO on the artifact's fp32 file, in bf16 and in f32 (`fp32-openvino`), and on its int8-weight graph
(`int8-openvino`): gates, parity with fp32, and `--precision auto`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from builders import MINILM, TINY
from conftest import invoke, long_pairs_table
from onnx import numpy_helper
from sentence_transformers.cross_encoder import CrossEncoder
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from export.gate import Gates, failures
from scorer import precision as selection
from scorer import run_cmd
from scorer.artifact import Manifest, Variant, load_manifest
from scorer.errors import InputError
from scorer.metrics import decision_flips, spearman
from scorer.model import LoadedModel
from scorer.openvino_backend import openvino_available
from scorer.precision import Choice, CpuInfo, choose, choose_cpu, cpu_info

HERE = cpu_info()
needs_bf16 = pytest.mark.skipif(
    not (HERE.has_bf16 and openvino_available()),
    reason="bf16 is not built here: "
    + ("the openvino package is not installed" if not openvino_available() else f"{HERE.model} has no bf16 flag"),
)
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="the openvino package is not installed")
BF16_CPU = CpuInfo("Test CPU with bf16", frozenset({"avx2", "avx512_bf16"}))
AVX2_CPU = CpuInfo("Test CPU, AVX2 only", frozenset({"avx2"}))


# Selection logic, with a fake probe ----------------------------------------------------------------------


class FakeProbe:
    """Returns fixed pairs/s and records which precisions it was asked to time."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.rates, self.calls = rates, []

    def __call__(self, precisions: list[str]) -> dict[str, float]:
        self.calls.append(sorted(precisions))
        return {p: self.rates[p] for p in precisions}


def _manifest(gates: dict[str, bool]) -> Manifest:
    variants = {
        p: Variant(
            "model.fp32.onnx" if p in ("fp32", "bf16", "fp32-openvino") else f"model.{p}.onnx",
            "0" * 64,
            parity={"passed": ok, "failures": [] if ok else ["9 decision flips at 0.5 (0.90% > 0.50%)"]},
            recipe=OPENVINO_RECIPES.get(p, {}),
        )
        for p, ok in gates.items()
    }
    return Manifest("sigmoid", 256, ["input_ids"], "tokenizer.json", "0" * 64, 0, variants)


@pytest.fixture
def with_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection tests do not depend on whether openvino is installed here."""
    monkeypatch.setattr(selection, "openvino_available", lambda: True)


RATES = {"fp32": 100.0, "int8": 150.0, "fp16": 900.0, "bf16": 300.0, "fp32-openvino": 126.0, "int8-openvino": 420.0}
OPENVINO_RECIPES = {
    "bf16": {"runtime": "openvino", "inference_precision": "bf16"},
    "fp32-openvino": {"runtime": "openvino", "inference_precision": "fp32"},
    "int8-openvino": {"runtime": "openvino", "inference_precision": "bf16", "quantization_group": 384},
}


def test_auto_picks_the_fastest_gated_variant_and_caches_the_decision(with_openvino: None, tmp_path: Path) -> None:
    manifest, cache = _manifest({"fp32": True, "int8": True, "fp16": True, "bf16": True}), tmp_path / "c.json"
    probe = FakeProbe(RATES)
    choice = choose_cpu(manifest, "cpu|2|sha", BF16_CPU, probe, cache)
    assert choice.precision == "bf16" and probe.calls == [["bf16", "int8"]]  # fp16 needs CUDA, fp32 is a fallback
    assert choice.probe_pairs_per_s == {"int8": 150.0, "bf16": 300.0}
    assert "timed probe: bf16 300 pairs/s, int8 150 pairs/s" in choice.reason
    assert (
        "fp16 left out: fp16 needs CUDA" in choice.reason
        and "fp32 left out: fp32 runs only when no faster variant passed" in choice.reason
    )
    # Same CPU and artifact: the cached decision, no probe; another key (CPU, threads or artifact): probe again.
    again = choose_cpu(manifest, "cpu|2|sha", BF16_CPU, FakeProbe({}), cache)
    assert again.precision == "bf16" and again.reason.startswith("cached probe")
    slow_bf16 = FakeProbe({**RATES, "bf16": 120.0})
    assert choose_cpu(manifest, "other cpu|2|sha", BF16_CPU, slow_bf16, cache).precision == "int8"
    assert slow_bf16.calls == [["bf16", "int8"]]
    assert set(json.loads(cache.read_text())) == {"cpu|2|sha", "other cpu|2|sha"}


def test_auto_never_picks_a_variant_whose_gate_failed(with_openvino: None, tmp_path: Path) -> None:
    manifest, cache = _manifest({"fp32": True, "int8": True, "bf16": False}), tmp_path / "c.json"
    probe = FakeProbe({**RATES, "bf16": 1e6})
    choice = choose_cpu(manifest, "k", BF16_CPU, probe, cache)
    assert choice.precision == "int8" and probe.calls == []  # the only candidate left
    assert "bf16 left out: its gate failed at export: 9 decision flips" in choice.reason
    # A cache entry naming a variant that is not a candidate here is not trusted either: the probe runs.
    cache.write_text(json.dumps({"k": {"precision": "fp16", "probe_pairs_per_s": {"fp16": 1e6}}}))
    full = _manifest({"fp32": True, "int8": True, "fp16": True, "bf16": True})
    assert choose_cpu(full, "k", BF16_CPU, FakeProbe(RATES), cache).precision == "bf16"


def test_auto_without_bf16_on_the_cpu(with_openvino: None, tmp_path: Path) -> None:
    probe = FakeProbe(RATES)
    choice = choose_cpu(_manifest({"fp32": True, "int8": True, "bf16": True}), "k", AVX2_CPU, probe, tmp_path / "c")
    assert choice.precision == "int8" and probe.calls == []
    assert "bf16 left out: this CPU (Test CPU, AVX2 only) has no bf16" in choice.reason


def test_openvino_f32_is_probed_against_fp32_when_nothing_faster_passed(with_openvino: None, tmp_path: Path) -> None:
    manifest = _manifest({"fp32": True, "int8": False, "bf16": True, "fp32-openvino": True})
    probe = FakeProbe(RATES)
    choice = choose_cpu(manifest, "k", AVX2_CPU, probe, tmp_path / "c")
    assert choice.precision == "fp32-openvino" and probe.calls == [["fp32", "fp32-openvino"]]
    slower = FakeProbe({**RATES, "fp32-openvino": 90.0})
    assert choose_cpu(manifest, "k2", AVX2_CPU, slower, tmp_path / "c").precision == "fp32"


def test_fp32_variants_are_left_out_when_a_faster_one_passed(with_openvino: None, tmp_path: Path) -> None:
    manifest = _manifest({"fp32": True, "int8": True, "fp32-openvino": True})
    choice = choose_cpu(manifest, "k", AVX2_CPU, FakeProbe(RATES), tmp_path / "c")
    assert choice.precision == "int8" and choice.reason.startswith("the only gated variant")
    assert "fp32 left out" in choice.reason and "fp32-openvino left out" in choice.reason


def test_auto_probes_int8_openvino_beside_the_others_and_respects_its_gate(with_openvino: None, tmp_path: Path) -> None:
    gates = {"fp32": True, "int8": True, "bf16": True, "int8-openvino": True}
    probe = FakeProbe(RATES)
    choice = choose_cpu(_manifest(gates), "k", BF16_CPU, probe, tmp_path / "c")
    assert choice.precision == "int8-openvino" and probe.calls == [["bf16", "int8", "int8-openvino"]]
    failed = FakeProbe({**RATES, "int8-openvino": 1e6})
    choice = choose_cpu(_manifest({**gates, "int8-openvino": False}), "k2", BF16_CPU, failed, tmp_path / "c")
    assert choice.precision == "bf16" and failed.calls == [["bf16", "int8"]]
    assert "int8-openvino left out: its gate failed at export" in choice.reason
    # gated with bf16 elsewhere in the graph: a CPU without bf16 cannot run it as gated
    choice = choose_cpu(_manifest(gates), "k3", AVX2_CPU, FakeProbe(RATES), tmp_path / "c")
    assert (
        choice.precision == "int8"
        and "int8-openvino left out: this CPU (Test CPU, AVX2 only) has no bf16" in choice.reason
    )


def test_int8_openvino_is_held_to_the_int8_gate() -> None:
    parity = {"all_finite": True, "max_abs_diff": 0.05, "spearman": 0.995, "flips": 6, "flip_rate": 0.006}
    assert failures("int8-openvino", parity, Gates()) == ["6 decision flips at 0.5 (0.60% > 0.50%)"]
    assert failures("int8-openvino", {**parity, "flips": 4, "flip_rate": 0.004}, Gates()) == []
    assert failures("int8-openvino", {**parity, "spearman": 0.98, "flips": 0, "flip_rate": 0.0}, Gates()) == [
        "spearman 0.9800 < 0.99"
    ]


def test_a_single_candidate_needs_no_probe(with_openvino: None, tmp_path: Path) -> None:
    choice = choose_cpu(_manifest({"fp32": True, "bf16": False}), "k", BF16_CPU, FakeProbe({}), tmp_path / "c")
    assert choice == Choice("auto", "fp32", choice.reason, {}, BF16_CPU.describe())
    assert choice.reason.startswith("the only gated variant") and not (tmp_path / "c").exists()


def test_cpu_info_reads_model_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\nprocessor\t: 1\n"
    )
    cpu = cpu_info(path)
    assert cpu.has_bf16 and cpu.describe() == {"model": "Intel Xeon", "flags": ["amx_bf16", "amx_tile", "avx2"]}
    assert not cpu_info(tmp_path / "absent").has_bf16


# The bf16 gate and parity, on a tiny model whose scores spread (random tiny models score ~constant) --------


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(checkpoint, artifact with fp32 and bf16, calibration) of a tiny BERT initialised wide (scores 0.3-0.5)."""
    root = tmp_path_factory.mktemp("spread")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    config = BertConfig(vocab_size=tokenizer.vocab_size, **TINY, num_labels=1, initializer_range=0.2)
    checkpoint = root / "checkpoint"
    BertForSequenceClassification(config).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    CrossEncoder(str(checkpoint), device="cpu", max_length=256).save(str(checkpoint))
    calibration = root / "calibration.parquet"
    pq.write_table(long_pairs_table(200, seed=11), calibration)
    artifact = root / "artifact"
    loose_int8 = ["--int8-min-spearman", "-1", "--int8-max-flip-rate", "1"]  # speed candidate for auto only
    result = invoke(
        "export",
        checkpoint,
        "-o",
        artifact,
        "--calibration",
        calibration,
        "--precisions",
        "fp32,int8,bf16,fp32-openvino,int8-openvino",
        *loose_int8,
    )
    assert result.exit_code == 0, result.output
    return checkpoint, artifact, calibration


@needs_bf16
def test_export_gates_bf16_on_this_cpu(spread: tuple[Path, Path, Path]) -> None:
    manifest = load_manifest(spread[1])
    bf16, fp32 = manifest.variants["bf16"], manifest.variants["fp32"]
    assert (bf16.file, bf16.sha256) == (fp32.file, fp32.sha256)  # no second file
    assert bf16.recipe["runtime"] == "openvino" and bf16.recipe["inference_precision"] == "bf16"
    parity = bf16.parity
    assert parity["passed"] and parity["pairs"] == 200 and parity["runtime"] == "OpenVINO CPU bf16"
    assert parity["spearman"] >= 0.999 and parity["flips"] == 0 and 1e-4 < parity["max_abs_diff"] < 1e-2
    assert parity["cpu"]["model"] == HERE.model and {"avx512_bf16", "amx_bf16"} & set(parity["cpu"]["flags"])
    assert manifest.versions["openvino"] == "2026.4.1" and manifest.gates["bf16_max_flip_rate"] == 0.005


@needs_bf16
def test_bf16_scores_follow_fp32_within_the_gate(spread: tuple[Path, Path, Path]) -> None:
    table = long_pairs_table()
    queries, candidates = table["query"].to_pylist(), table["candidate"].to_pylist()
    fp32 = LoadedModel.load(spread[1], "fp32").score(queries, candidates)
    bf16_model = LoadedModel.load(spread[1], "bf16")
    bf16 = bf16_model.score(queries, candidates)
    assert bf16_model.onnx.provider == "OpenVINO CPU bf16" and np.isfinite(bf16).all()
    assert spearman(fp32, bf16) >= 0.999 and decision_flips(fp32, bf16, 0.5) == 0
    assert 1e-4 < np.abs(fp32 - bf16).max() < 1e-2  # really bf16 (f32 would be ~1e-7), within the gate
    assert np.array_equal(bf16, bf16_model.score(queries, candidates))  # same batches, same bits (resume)


@needs_bf16
def test_verify_rechecks_bf16_on_this_machine(spread: tuple[Path, Path, Path]) -> None:
    checkpoint, artifact, calibration = spread
    common = ["verify", artifact, "--checkpoint", checkpoint, "--data", calibration]
    ok = invoke(*common)
    assert ok.exit_code == 0 and "bf16" in ok.output and HERE.model in ok.output
    strict = invoke(*common, "--bf16-max-flip-rate", "-1")
    assert strict.exit_code == 1 and "parity gate failed: bf16" in strict.output


def test_verify_skips_bf16_on_a_cpu_without_it(
    spread: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import export.cli

    artifact = _with_bf16(spread, tmp_path, passed=True)
    monkeypatch.setattr(export.cli, "cpu_info", lambda: AVX2_CPU)
    result = invoke("verify", artifact, "--checkpoint", spread[0], "--data", spread[2])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "Test CPU, AVX2 only" in result.output


@needs_bf16
def test_run_auto_reports_its_choice_and_caches_it_outside_the_artifact(
    spread: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    source, report = tmp_path / "pairs.parquet", tmp_path / "report.json"
    pq.write_table(long_pairs_table(60), source)
    result = invoke("run", source, "-m", spread[1], "-o", tmp_path / "out.parquet", "--report", report)
    assert result.exit_code == 0, result.output
    choice = json.loads(report.read_text())["precision_choice"]
    assert choice["requested"] == "auto" and choice["precision"] in ("int8", "bf16", "int8-openvino")
    assert set(choice["probe_pairs_per_s"]) == {"int8", "bf16", "int8-openvino"} and "timed probe" in choice["reason"]
    assert f"precision {choice['precision']}: fastest in a timed probe" in result.output
    assert (tmp_path / "cache" / "product-scorer" / "precision.json").is_file()
    assert sorted(p.name for p in spread[1].iterdir()) == [
        "manifest.json",
        "model.fp32.onnx",
        "model.int8-openvino.onnx",
        "model.int8.onnx",
        "tokenizer.json",
    ]


def _with_bf16(spread: tuple[Path, Path, Path], tmp_path: Path, passed: bool) -> Path:
    """A copy of the spread artifact whose manifest holds a bf16 variant with the given verdict (any CPU)."""
    artifact = tmp_path / "artifact"
    shutil.copytree(spread[1], artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    recipe = {"runtime": "openvino", "inference_precision": "bf16"}
    parity = {"passed": passed, "failures": [] if passed else ["spearman 0.9 < 0.99"]}
    manifest["variants"]["bf16"] = {**manifest["variants"]["fp32"], "recipe": recipe, "parity": parity}
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    return artifact


def test_explicit_precision_of_a_failed_variant_is_refused(spread: tuple[Path, Path, Path], tmp_path: Path) -> None:
    artifact = _with_bf16(spread, tmp_path, passed=False)
    with pytest.raises(InputError, match="failed its gate at export"):
        choose("bf16", artifact)
    assert choose("fp32", artifact).reason == "--precision given"


def test_explicit_bf16_is_refused_on_a_cpu_without_bf16(
    spread: tuple[Path, Path, Path], tmp_path: Path, with_openvino: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = _with_bf16(spread, tmp_path, passed=True)
    monkeypatch.setattr(selection, "cpu_info", lambda: AVX2_CPU)
    with pytest.raises(InputError, match=r"--precision bf16: this CPU \(Test CPU, AVX2 only\) has no bf16"):
        choose("bf16", artifact)


@needs_openvino
def test_openvino_f32_is_gated_like_fp32_and_scores_like_it(spread: tuple[Path, Path, Path]) -> None:
    manifest = load_manifest(spread[1])
    variant, fp32 = manifest.variants["fp32-openvino"], manifest.variants["fp32"]
    assert (variant.file, variant.sha256) == (fp32.file, fp32.sha256)  # no second file
    assert variant.recipe == {"runtime": "openvino", "inference_precision": "fp32"}
    assert variant.parity["passed"] and variant.parity["runtime"] == "OpenVINO CPU fp32"
    assert variant.parity["max_abs_diff"] < manifest.gates["fp32_max_abs_diff"]
    table = long_pairs_table()
    queries, candidates = table["query"].to_pylist(), table["candidate"].to_pylist()
    reference = LoadedModel.load(spread[1], "fp32").score(queries, candidates)
    scores = LoadedModel.load(spread[1], "fp32-openvino").score(queries, candidates)
    assert np.abs(scores - reference).max() < 1e-5 and decision_flips(reference, scores, 0.5) == 0


@needs_openvino
def test_int8_openvino_has_int8_weights_and_scores_like_fp32(spread: tuple[Path, Path, Path]) -> None:
    manifest = load_manifest(spread[1])
    variant = manifest.variants["int8-openvino"]
    assert variant.file == "model.int8-openvino.onnx" and variant.parity["pairs"] == 200
    assert variant.recipe["quantization_group"] == TINY["hidden_size"] and variant.recipe["rounding"] == "gptq"
    assert variant.recipe["inference_precision"] == ("bf16" if HERE.has_bf16 else "fp32")
    graph = onnx.load(str(spread[1] / variant.file)).graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    dequantized = {
        node.output[0]: constants[node.input[0]] for node in graph.node if node.op_type == "DequantizeLinear"
    }
    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    assert not [node.name for node in matmuls if node.input[1] in constants]  # no fp32 weight left
    weights = [dequantized[node.input[1]] for node in matmuls if node.input[1] in dequantized]
    assert len(weights) == 2 * 6  # q, k, v, attention out, FFN in and out per layer
    assert all(w.dtype == np.int8 and np.abs(w).max() <= 127 for w in weights)
    assert max(int(np.abs(w).max()) for w in weights) > 63  # 8-bit grid, not the ONNX Runtime recipe's 7 bits
    table = long_pairs_table()
    queries, candidates = table["query"].to_pylist(), table["candidate"].to_pylist()
    reference = LoadedModel.load(spread[1], "fp32").score(queries, candidates)
    model = LoadedModel.load(spread[1], "int8-openvino")
    scores = model.score(queries, candidates)
    assert spearman(reference, scores) >= 0.99 and np.abs(scores - reference).max() < 0.02
    assert np.array_equal(model.score(queries, candidates), scores)  # same batches, same bits


def test_auto_probes_the_runs_own_first_pairs(
    bert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = long_pairs_table(300, seed=8)
    index = table.schema.get_field_index("query")
    nulls = table.set_column(index, "query", pa.array([None, *table["query"].to_pylist()[1:]], pa.string()))
    source = tmp_path / "pairs.parquet"
    pq.write_table(nulls, source)
    seen: list[tuple[list[str], list[str]]] = []

    class Probe(selection.TimedProbe):
        def take(self, precision: str) -> None:
            seen.append(self.sample())  # what the probe would time, whether or not this artifact needs one

    monkeypatch.setattr(run_cmd, "TimedProbe", Probe)
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet", "--on-null", "null")
    assert result.exit_code == 0, result.output
    (queries, others), *_ = seen
    assert len(queries) == selection.PROBE_PAIRS == 256  # the first 256 pairs without a null text
    assert queries == table["query"].to_pylist()[1:257] and others == table["candidate"].to_pylist()[1:257]


def test_timed_probe_hands_the_winner_to_the_run(bert: tuple[Path, Path]) -> None:
    probe = selection.TimedProbe(bert[1], 1, selection.synthetic_pairs)
    rates = probe(["fp32", "int8"])
    assert set(rates) == {"fp32", "int8"} and min(rates.values()) > 0
    winner = probe.take("int8")
    assert winner is not None and winner.precision == "int8"
    assert probe.take("fp32") is None  # the others were released with the first take
    queries, candidates = selection.synthetic_pairs()
    fresh = LoadedModel.load(bert[1], "int8", 1).score(queries, candidates)
    assert np.array_equal(winner.score(queries, candidates), fresh)  # a warm model scores like a fresh one


@pytest.mark.parametrize(("seconds", "rounds"), [({"fp32": 0.3, "int8": 0.1}, 2), ({"fp32": 0.1, "int8": 0.1}, 3)])
def test_timed_probe_stops_early_on_a_clear_lead(
    bert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float], rounds: int
) -> None:
    calls: list[str] = []
    clock = [0.0]  # a fake clock: scoring takes exactly `seconds` per variant

    def score_encoded(self: LoadedModel, encoded: object, batch_tokens: int | None = None) -> None:
        calls.append(self.precision)
        clock[0] += seconds[self.precision]

    monkeypatch.setattr(LoadedModel, "score_encoded", score_encoded)
    monkeypatch.setattr(selection, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    rates = selection.TimedProbe(bert[1], 1, selection.synthetic_pairs)(["fp32", "int8"])
    assert calls == ["fp32", "int8"] * rounds  # warm-up, then timed rounds until one leads by CLEAR_LEAD
    assert rates["int8"] / rates["fp32"] == pytest.approx(seconds["fp32"] / seconds["int8"])
