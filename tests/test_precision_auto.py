"""`--precision auto` (`scorer.precision`): the choice among gated variants, its cache, the CPU's flags, the timed
probe, and what a run reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AVX2_CPU, invoke, long_pairs_table, needs_bf16, needs_openvino

from scorer import cli as run_cli
from scorer import precision as selection
from scorer.artifact import Manifest, Variant, load_manifest, sha256_file
from scorer.gates import Gates
from scorer.model import LoadedModel
from scorer.precision import Choice, CpuInfo, ProbeResult, choose_cpu, cpu_info
from scorer.tokenize import EncodedPairs

BF16_CPU = CpuInfo("Test CPU with bf16", frozenset({"avx2", "avx512_bf16"}))


# The choice, with a fake probe --------------------------------------------------------------------------------------


FIGURES = {"pairs": 256, "spearman": 0.999, "flips": 0}


class FakeProbe:
    """Returns fixed pairs/s, agreement with fp32 (every variant agrees but `disagree`), and re-gate verdicts
    (passed but `regate_failures`); records what it was asked."""

    def __init__(
        self, rates: dict[str, float], disagree: tuple[str, ...] = (), regate_failures: dict | None = None
    ) -> None:
        self.rates, self.disagree, self.regate_failures = rates, disagree, regate_failures or {}
        self.calls: list[list[str]] = []
        self.regated: list[str] = []

    def __call__(self, precisions: list[str]) -> ProbeResult:
        self.calls.append(sorted(precisions))
        agreement = {
            p: {**FIGURES, "failures": ["spearman 0.0500 < 0.99"] if p in self.disagree else []} for p in precisions
        }
        return ProbeResult({p: self.rates[p] for p in precisions if p not in self.disagree}, agreement)

    def regate(self, precision: str) -> dict[str, Any]:
        self.regated.append(precision)
        return {**FIGURES, "failures": self.regate_failures.get(precision, [])}


def _manifest(gates: dict[str, bool]) -> Manifest:
    variants = {
        p: Variant(
            "model.fp32.onnx" if p in ("fp32", "bf16", "fp32-openvino") else f"model.{p}.onnx",
            "0" * 64,
            parity={
                "passed": ok,
                "failures": [] if ok else ["9 decision flips at 0.5 (0.90% > 0.50%)"],
                "cpu": {"model": BF16_CPU.model},  # where the export gated it
            },
            recipe=OPENVINO_RECIPES.get(p, {}),
        )
        for p, ok in gates.items()
    }
    return Manifest("sigmoid", 256, ["input_ids"], "tokenizer.json", "0" * 64, 0, variants)


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
    assert choice.precision == "int8" and probe.calls == [["int8"]]  # the only candidate left: checked, not timed
    assert "bf16 left out: its gate failed at export: 9 decision flips" in choice.reason
    # A cache entry naming a variant that is not a candidate here is not trusted either: the probe runs.
    cache.write_text(json.dumps({"k": {"precision": "fp16", "probe_pairs_per_s": {"fp16": 1e6}}}))
    full = _manifest({"fp32": True, "int8": True, "fp16": True, "bf16": True})
    assert choose_cpu(full, "k", BF16_CPU, FakeProbe(RATES), cache).precision == "bf16"


def test_auto_without_bf16_on_the_cpu(with_openvino: None, tmp_path: Path) -> None:
    probe = FakeProbe(RATES)
    choice = choose_cpu(_manifest({"fp32": True, "int8": True, "bf16": True}), "k", AVX2_CPU, probe, tmp_path / "c")
    assert choice.precision == "int8" and probe.calls == [["int8"]]
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
    assert choice.precision == "int8" and choice.reason.startswith("the only variant that agrees with fp32")
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


def test_auto_leaves_out_a_fast_variant_that_disagrees_with_fp32(with_openvino: None, tmp_path: Path) -> None:
    gates = {"fp32": True, "int8": True, "bf16": True, "int8-openvino": True}
    probe = FakeProbe({**RATES, "int8-openvino": 1e6}, disagree=("int8-openvino",))
    choice = choose_cpu(_manifest(gates), "k", BF16_CPU, probe, tmp_path / "c")
    assert choice.precision == "bf16" and probe.calls == [["bf16", "int8", "int8-openvino"]]
    assert choice.agreement["int8-openvino"]["failures"] == ["spearman 0.0500 < 0.99"]
    assert "int8-openvino left out: disagrees with fp32 on the run's first pairs (spearman 0.9990" in choice.reason
    assert set(choice.probe_pairs_per_s) == {"bf16", "int8"}
    # the cached decision keeps the agreement figures and says why; when every faster variant disagrees, fp32 scores
    cached = choose_cpu(_manifest(gates), "k", BF16_CPU, FakeProbe({}), tmp_path / "c")
    assert cached.agreement == choice.agreement and "int8-openvino left out: disagrees with fp32" in cached.reason
    wrong = FakeProbe(RATES, disagree=("bf16", "int8", "int8-openvino"))
    choice = choose_cpu(_manifest(gates), "k2", BF16_CPU, wrong, tmp_path / "c")
    assert choice.precision == "fp32" and choice.reason.startswith("every faster variant disagrees with fp32")


def test_openvino_variants_gated_on_another_cpu_are_gated_again_here(with_openvino: None, tmp_path: Path) -> None:
    other = CpuInfo("Another CPU with AMX", frozenset({"avx2", "amx_bf16", "amx_int8"}))
    gates = {"fp32": True, "int8": True, "bf16": True, "int8-openvino": True}
    probe = FakeProbe(RATES, regate_failures={"int8-openvino": ["14 decision flips at 0.5 (1.40% > 0.50%)"]})
    choice = choose_cpu(_manifest(gates), "k", other, probe, tmp_path / "c")
    assert probe.regated == ["bf16", "int8-openvino"] and probe.calls == [["bf16", "int8"]]
    assert choice.precision == "bf16" and choice.regated["int8-openvino"]["failures"]
    assert (
        "int8-openvino left out: gated at export on Test CPU with bf16, it fails its gate on this CPU "
        "(Another CPU with AMX): 14 decision flips" in choice.reason
    )
    again = FakeProbe(RATES)  # the verdicts are cached per CPU model and artifact: no second re-gate
    assert choose_cpu(_manifest(gates), "k", other, again, tmp_path / "c").precision == "bf16"
    assert again.regated == []
    same = FakeProbe(RATES)
    choose_cpu(_manifest(gates), "k3", BF16_CPU, same, tmp_path / "c")
    assert same.regated == []  # gated on this very CPU: trusted as gated


@pytest.mark.parametrize(
    "entry",
    [
        {"precision": "bf16", "probe_pairs_per_s": "fast", "agreement": {}},
        {"precision": "bf16", "probe_pairs_per_s": {"bf16": 300.0}},  # an older probe's: no agreement figures
        ["bf16"],
    ],
)
def test_a_corrupt_cache_entry_is_measured_again(with_openvino: None, tmp_path: Path, entry: object) -> None:
    other = CpuInfo("Another CPU with AMX", frozenset({"amx_bf16"}))
    cache = tmp_path / "c.json"
    cache.write_text(json.dumps({"k": entry, "k|regate bf16": {"failures": "none"}}))
    probe = FakeProbe(RATES)
    choice = choose_cpu(_manifest({"fp32": True, "int8": True, "bf16": True}), "k", other, probe, cache)
    assert choice.precision == "bf16" and probe.calls == [["bf16", "int8"]] and probe.regated == ["bf16"]
    assert json.loads(cache.read_text())["k|regate bf16"]["failures"] == []


def test_int8_openvino_is_refused_for_shapes_openvino_gets_wrong(with_openvino: None, tmp_path: Path) -> None:
    manifest = _manifest({"fp32": True, "int8": True, "int8-openvino": True})
    manifest.variants["int8-openvino"].recipe["int8_weight_shapes"] = [[32, 32], [32, 64], [64, 32]]
    choice = choose_cpu(manifest, "k", BF16_CPU, FakeProbe(RATES), tmp_path / "c")
    assert choice.precision == "int8"
    assert "int8-openvino left out: OpenVINO computes int8-weight MatMuls of shape (32, 32) wrong" in choice.reason
    manifest.variants["int8-openvino"].recipe["int8_weight_shapes"] = [[384, 1536], [1536, 384], [384, 384]]
    assert choose_cpu(manifest, "k2", BF16_CPU, FakeProbe(RATES), tmp_path / "c").precision == "int8-openvino"


def test_a_single_candidate_needs_no_probe(with_openvino: None, tmp_path: Path) -> None:
    choice = choose_cpu(_manifest({"fp32": True, "bf16": False}), "k", BF16_CPU, FakeProbe({}), tmp_path / "c")
    assert choice == Choice("auto", "fp32", choice.reason, {}, BF16_CPU.describe(), usable=["fp32"])
    assert choice.reason.startswith("the only gated variant") and not (tmp_path / "c").exists()


def test_cpu_info_reads_model_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(
        "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 amx_bf16 amx_tile\n\nprocessor\t: 1\n"
    )
    cpu = cpu_info(path)
    assert cpu.has_bf16 and cpu.describe() == {"model": "Intel Xeon", "flags": ["amx_bf16", "amx_tile", "avx2"]}
    assert not cpu_info(tmp_path / "absent").has_bf16


# What a run chooses, reports and probes -----------------------------------------------------------------------------


@needs_bf16
def test_run_auto_reports_its_choice_and_caches_it_outside_the_artifact(
    spread: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    source, report = tmp_path / "pairs.parquet", tmp_path / "report.json"
    pq.write_table(long_pairs_table(60), source)
    result = invoke("run", source, "-m", spread[1], "-o", tmp_path / "out.parquet", "--report", report)
    assert result.exit_code == 0, result.output
    manifest = load_manifest(spread[1])
    gated = {p for p in ("int8", "bf16", "int8-openvino") if manifest.variants[p].parity["passed"]}
    choice = json.loads(report.read_text())["precision_choice"]
    agreed = {p for p, figures in choice["agreement"].items() if not figures["failures"]}
    assert choice["requested"] == "auto" and set(choice["agreement"]) == gated and choice["regated"] == {}
    assert set(choice["probe_pairs_per_s"]) == agreed and choice["precision"] in (agreed or {"fp32"})
    assert all(figures["pairs"] == 60 for figures in choice["agreement"].values())  # the run's own pairs
    assert f"precision {choice['precision']}: " in result.output
    assert (tmp_path / "cache" / "product-scorer" / "precision.json").is_file()
    assert sorted(p.name for p in spread[1].iterdir()) == [
        "manifest.json",
        "model.fp32.onnx",
        "model.int8-openvino.onnx",
        "model.int8.onnx",
        "tokenizer.json",
    ]


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

    monkeypatch.setattr(run_cli, "TimedProbe", Probe)
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    result = invoke("run", source, "-m", bert[1], "-o", tmp_path / "out.parquet", "--on-null", "null")
    assert result.exit_code == 0, result.output
    (queries, others), *_ = seen
    assert len(queries) == selection.PROBE_PAIRS == 256  # the first 256 pairs without a null text
    assert queries == table["query"].to_pylist()[1:257] and others == table["candidate"].to_pylist()[1:257]


def test_auto_never_picks_a_fast_variant_that_scores_wrong(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An artifact whose int8 graph passed its gate but scores wrong here (its logit negated): auto checks it
    against fp32 on the run's first pairs, leaves it out, says so, and scores with fp32."""
    artifact = tmp_path / "artifact"
    shutil.copytree(bert[1], artifact)
    model = onnx.load(str(artifact / "model.int8.onnx"))
    output = model.graph.output[0]
    negated = f"{output.name}_before_negation"
    for node in model.graph.node:
        node.output[:] = [negated if name == output.name else name for name in node.output]
    model.graph.node.append(onnx.helper.make_node("Neg", [negated], [output.name]))
    onnx.save(model, str(artifact / "model.int8.onnx"))
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["gates"] = Gates().to_dict()  # the default gates, not the tiny fixture's loosened ones
    manifest["variants"] = {p: v for p, v in manifest["variants"].items() if p in ("fp32", "int8")}
    manifest["variants"]["int8"]["sha256"] = sha256_file(artifact / "model.int8.onnx")
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    output_path, report = tmp_path / "scores.parquet", tmp_path / "report.json"
    result = invoke("run", pairs_file, "-m", artifact, "-o", output_path, "--report", report)
    assert result.exit_code == 0, result.output
    choice = json.loads(report.read_text())["precision_choice"]
    assert choice["precision"] == "fp32" and choice["agreement"]["int8"]["spearman"] < -0.9
    assert "int8 left out: disagrees with fp32 on the run's first pairs" in result.output
    table = pq.read_table(pairs_file)
    expected = LoadedModel.load(artifact, "fp32").score(table["query"].to_pylist(), table["candidate"].to_pylist())
    assert np.array_equal(pq.read_table(output_path)["score"].to_numpy(), expected)


# The timed probe ----------------------------------------------------------------------------------------------------


@needs_openvino
def test_timed_probe_regates_a_variant_on_the_builtin_gate_pairs(spread: tuple[Path, Path]) -> None:
    probe = selection.TimedProbe(spread[1], None, selection.synthetic_pairs)
    verdict = probe.regate("fp32-openvino")
    assert verdict["pairs"] == 1000 and verdict["failures"] == [] and verdict["max_abs_diff"] < 1e-4


def test_timed_probe_hands_the_winner_to_the_run(bert: tuple[Path, Path]) -> None:
    probe = selection.TimedProbe(bert[1], 1, selection.synthetic_pairs)
    result = probe(["fp32", "int8"])
    assert set(result.rates) == set(result.agreement) == {"fp32", "int8"} and min(result.rates.values()) > 0
    assert result.agreement["fp32"]["max_abs_diff"] == 0 and result.agreement["int8"]["pairs"] == 32
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

    def score_encoded(self: LoadedModel, encoded: EncodedPairs, batch_tokens: int | None = None) -> tuple:
        calls.append(self.precision)
        clock[0] += seconds[self.precision]
        return np.linspace(0, 1, len(encoded.lengths)), None

    monkeypatch.setattr(LoadedModel, "score_encoded", score_encoded)
    monkeypatch.setattr(selection, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    rates = selection.TimedProbe(bert[1], 1, selection.synthetic_pairs)(["fp32", "int8"]).rates
    # the reference, the scoring round (a warm-up), then timed rounds until one leads by CLEAR_LEAD
    assert calls == ["fp32", *["fp32", "int8"] * rounds]
    assert rates["int8"] / rates["fp32"] == pytest.approx(seconds["fp32"] / seconds["int8"])
