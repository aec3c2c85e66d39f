"""OpenVINO on the artifact's fp32 file, in bf16 and in f32 (`fp32-openvino`), and on its int8-weight graph
(`int8-openvino`): gates, parity with fp32, and `--precision auto`."""

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
from builders import SMALL, tiny_cross_encoder
from conftest import invoke, long_pairs_table
from onnx import numpy_helper

from scorer import cli as run_cli
from scorer import precision as selection
from scorer.artifact import Manifest, Variant, load_manifest
from scorer.errors import InputError
from scorer.gates import Gates, builtin_pairs, failures
from scorer.metrics import decision_flips
from scorer.model import LoadedModel
from scorer.openvino_backend import openvino_available
from scorer.precision import Choice, CpuInfo, ProbeResult, choose, choose_cpu, cpu_info
from scorer.tokenize import EncodedPairs

HERE = cpu_info()
needs_bf16 = pytest.mark.skipif(
    not (HERE.has_bf16 and openvino_available()),
    reason="bf16 is not built here: "
    + (
        "the openvino package is not installed"
        if not openvino_available()
        else f"needs the CPU flag avx512_bf16 or amx_bf16, which {HERE.model} lacks"
    ),
)
needs_openvino = pytest.mark.skipif(not openvino_available(), reason="the openvino package is not installed")
BF16_CPU = CpuInfo("Test CPU with bf16", frozenset({"avx2", "avx512_bf16"}))
AVX2_CPU = CpuInfo("Test CPU, AVX2 only", frozenset({"avx2"}))


# Selection logic, with a fake probe ----------------------------------------------------------------------


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


def test_int8_openvino_is_held_to_the_int8_gate() -> None:
    parity = {"all_finite": True, "max_abs_diff": 0.05, "spearman": 0.995, "flips": 6, "flip_rate": 0.006}
    assert failures("int8-openvino", parity, Gates()) == ["6 decision flips at 0.5 (0.60% > 0.50%)"]
    assert failures("int8-openvino", {**parity, "flips": 4, "flip_rate": 0.004}, Gates()) == []
    assert failures("int8-openvino", {**parity, "spearman": 0.98, "flips": 0, "flip_rate": 0.0}, Gates()) == [
        "spearman 0.9800 < 0.99"
    ]


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


# The gates of the OpenVINO variants on this CPU, on a small model under the default gates -----------------------
# Whether a variant passes depends on this CPU's kernels: each test asserts what must hold either way (the verdict
# follows the gate's rule, a rerun reproduces it, auto and --precision respect it), never a pass by luck.


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, artifact with every CPU variant) of a small BERT (hidden 128: shapes OpenVINO's int8 kernels
    handle) whose scores spread, exported under the default gates on the built-in gate pairs: what `auto` may
    pick here is what those gates let through on this CPU, never a loosened test gate."""
    root = tmp_path_factory.mktemp("spread")
    checkpoint = tiny_cross_encoder("bert", root / "checkpoint", size=SMALL)
    artifact = root / "artifact"
    result = invoke("export", checkpoint, "-o", artifact, "--precisions", "fp32,int8,bf16,fp32-openvino,int8-openvino")
    assert result.exit_code == 0, result.output
    return checkpoint, artifact


def _verdict_follows_the_rule(precision: str, manifest: Manifest) -> dict[str, Any]:
    parity = manifest.variants[precision].parity
    assert parity["failures"] == failures(precision, parity, Gates.from_dict(manifest.gates))
    assert parity["passed"] == (parity["failures"] == [])
    return parity


def test_the_gate_sees_long_records_and_the_manifest_says_so(spread: tuple[Path, Path]) -> None:
    lengths = load_manifest(spread[1]).source["calibration_lengths"]
    assert lengths["pairs"] == 1000 and lengths["tokens_max"] == 256 and lengths["tokens_p50"] < 64
    assert 0.2 <= lengths["over_128"] <= 0.4 and 0 < lengths["truncated"] < 0.01


@needs_bf16
def test_export_gates_bf16_on_this_cpu(spread: tuple[Path, Path]) -> None:
    manifest = load_manifest(spread[1])
    bf16, fp32 = manifest.variants["bf16"], manifest.variants["fp32"]
    assert (bf16.file, bf16.sha256) == (fp32.file, fp32.sha256)  # no second file
    assert bf16.recipe["runtime"] == "openvino" and bf16.recipe["inference_precision"] == "bf16"
    parity = _verdict_follows_the_rule("bf16", manifest)
    assert parity["pairs"] == 1000 and parity["runtime"] == "OpenVINO CPU bf16" and parity["all_finite"]
    assert 1e-4 < parity["max_abs_diff"] < 0.1  # really bf16: f32 would differ by ~1e-7
    assert parity["cpu"]["model"] == HERE.model and {"avx512_bf16", "amx_bf16"} & set(parity["cpu"]["flags"])
    assert manifest.versions["openvino"] == "2026.4.1" and manifest.gates["bf16_max_flip_rate"] == 0.005


@needs_bf16
def test_verify_rechecks_the_openvino_variants_on_this_machine(spread: tuple[Path, Path]) -> None:
    checkpoint, artifact = spread
    manifest = load_manifest(artifact)
    ok = invoke("verify", artifact, "--checkpoint", checkpoint)  # the export's pairs: the same verdicts
    assert ok.exit_code == 0, ok.output
    assert "bf16" in ok.output and HERE.model in ok.output
    strict = invoke("verify", artifact, "--checkpoint", checkpoint, "--bf16-max-flip-rate", "-1")
    if manifest.variants["bf16"].parity["passed"]:
        assert strict.exit_code == 1 and "parity gate failed: bf16" in strict.output
    else:  # a variant that failed at export is not a regression
        assert strict.exit_code == 0 and "FAIL" in strict.output


def test_verify_skips_bf16_on_a_cpu_without_it(
    spread: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import export.cli

    artifact = _with_bf16(spread, tmp_path, passed=True)
    monkeypatch.setattr(export.cli, "cpu_info", lambda: AVX2_CPU)
    result = invoke("verify", artifact, "--checkpoint", spread[0])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "Test CPU, AVX2 only" in result.output


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


def _with_bf16(spread: tuple[Path, Path], tmp_path: Path, passed: bool) -> Path:
    """A copy of the spread artifact whose manifest holds a bf16 variant with the given verdict (any CPU)."""
    artifact = tmp_path / "artifact"
    shutil.copytree(spread[1], artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    recipe = {"runtime": "openvino", "inference_precision": "bf16"}
    parity = {"passed": passed, "failures": [] if passed else ["spearman 0.9 < 0.99"]}
    manifest["variants"]["bf16"] = {**manifest["variants"]["fp32"], "recipe": recipe, "parity": parity}
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    return artifact


def test_explicit_precision_of_a_failed_variant_is_refused(spread: tuple[Path, Path], tmp_path: Path) -> None:
    artifact = _with_bf16(spread, tmp_path, passed=False)
    with pytest.raises(InputError, match="failed its gate at export"):
        choose("bf16", artifact)
    assert choose("fp32", artifact).reason == "--precision given"


def test_explicit_bf16_is_refused_on_a_cpu_without_bf16(
    spread: tuple[Path, Path], tmp_path: Path, with_openvino: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = _with_bf16(spread, tmp_path, passed=True)
    monkeypatch.setattr(selection, "cpu_info", lambda: AVX2_CPU)
    with pytest.raises(InputError, match=r"--precision bf16: this CPU \(Test CPU, AVX2 only\) has no bf16"):
        choose("bf16", artifact)


@needs_openvino
def test_explicit_openvino_variant_gated_on_another_cpu_warns(spread: tuple[Path, Path], tmp_path: Path) -> None:
    artifact = tmp_path / "artifact"
    shutil.copytree(spread[1], artifact)
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["variants"]["fp32-openvino"]["parity"]["cpu"]["model"] = "Another CPU"
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    reason = choose("fp32-openvino", artifact).reason
    assert reason.startswith("--precision given; warning: fp32-openvino was gated on Another CPU, not on this CPU")
    assert choose("fp32-openvino", spread[1]).reason == "--precision given"


@needs_openvino
def test_timed_probe_regates_a_variant_on_the_builtin_gate_pairs(spread: tuple[Path, Path]) -> None:
    probe = selection.TimedProbe(spread[1], None, selection.synthetic_pairs)
    verdict = probe.regate("fp32-openvino")
    assert verdict["pairs"] == 1000 and verdict["failures"] == [] and verdict["max_abs_diff"] < 1e-4


@needs_openvino
def test_openvino_f32_is_gated_like_fp32_and_scores_like_it(spread: tuple[Path, Path]) -> None:
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
def test_int8_openvino_has_int8_weights_and_follows_its_gate(spread: tuple[Path, Path]) -> None:
    manifest = load_manifest(spread[1])
    variant = manifest.variants["int8-openvino"]
    assert variant.file == "model.int8-openvino.onnx" and variant.parity["pairs"] == 1000
    assert variant.recipe["quantization_group"] == SMALL["hidden_size"] and variant.recipe["rounding"] == "gptq"
    assert variant.recipe["int8_weight_shapes"] == [[128, 128], [128, 256], [256, 128]]
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
    parity = _verdict_follows_the_rule("int8-openvino", manifest)
    queries, candidates = builtin_pairs()
    model = LoadedModel.load(spread[1], "int8-openvino")
    scores = model.score(queries, candidates)
    assert np.array_equal(model.score(queries, candidates), scores)  # same batches, same bits
    if not parity["passed"]:
        with pytest.raises(InputError, match="failed its gate at export"):
            choose("int8-openvino", spread[1])


def test_int8_openvino_is_not_kept_for_a_hidden_size_openvino_gets_wrong(bert: tuple[Path, Path]) -> None:
    assert "int8-openvino" not in load_manifest(bert[1]).variants  # hidden 32: (32, 32) weights


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
