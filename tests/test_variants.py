"""The precision variants (`scorer.variants`), above all OpenVINO's on the fp32 file (`bf16`, `fp32-openvino`) and
its int8-weight graph (`int8-openvino`): registry, gates, export, verify, parity with fp32, explicit `--precision`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from builders import SMALL
from conftest import AVX2_CPU, HERE, invoke, long_pairs_table, needs_bf16, needs_openvino
from onnx import numpy_helper

from scorer import precision as selection
from scorer.artifact import Manifest, load_manifest
from scorer.errors import InputError
from scorer.gates import Gates, builtin_pairs, failures
from scorer.metrics import decision_flips
from scorer.model import LoadedModel
from scorer.precision import choose
from scorer.variants import VARIANTS


def test_each_exported_variant_is_its_registry_entry(bert: tuple[Path, Path]) -> None:
    manifest = load_manifest(bert[1])
    assert {"fp32", "int8"} <= set(manifest.variants)
    for precision, variant in manifest.variants.items():
        entry = VARIANTS[precision]
        assert variant.file == entry.file and (bert[1] / variant.file).is_file()
        assert variant.recipe.get("runtime", "onnxruntime") == entry.runtime


def test_int8_openvino_is_held_to_the_int8_gate() -> None:
    parity = {"all_finite": True, "max_abs_diff": 0.05, "spearman": 0.995, "flips": 6, "flip_rate": 0.006}
    assert failures("int8-openvino", parity, Gates()) == ["6 decision flips at 0.5 (0.60% > 0.50%)"]
    assert failures("int8-openvino", {**parity, "flips": 4, "flip_rate": 0.004}, Gates()) == []
    assert failures("int8-openvino", {**parity, "spearman": 0.98, "flips": 0, "flip_rate": 0.0}, Gates()) == [
        "spearman 0.9800 < 0.99"
    ]


# The gates of the OpenVINO variants on this CPU, on a small model under the default gates -----------------------
# Whether a variant passes depends on this CPU's kernels: each test asserts what must hold either way (the verdict
# follows the gate's rule, a rerun reproduces it, auto and --precision respect it), never a pass by luck.


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
