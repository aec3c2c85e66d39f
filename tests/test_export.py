"""`scorer export` and `scorer verify`: manifest contract, parity figures, and the gate refusing drift."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import onnx
import pytest
from conftest import LOOSE_GATES, artifact_copy, edit_manifest, invoke, long_pairs_table
from onnx import numpy_helper

from scorer.artifact import load_manifest, sha256_file
from scorer.openvino_backend import openvino_available
from scorer.precision import cpu_info


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_manifest_records_every_variant_with_parity(kind: str, request: pytest.FixtureRequest) -> None:
    _, artifact = request.getfixturevalue(kind)
    manifest = load_manifest(artifact)
    # no int8-openvino: the tiny models' (32, 32) weights are shapes OpenVINO's int8 kernels get wrong
    openvino = {"fp32-openvino"} | ({"bf16"} if cpu_info().has_bf16 else set())
    openvino = openvino if openvino_available() else set()
    assert set(manifest.variants) == {"fp32", "int8", "fp16"} | openvino
    if openvino_available():  # OpenVINO f32 is held to the fp32 gate, on BERT and ModernBERT alike
        ov = manifest.variants["fp32-openvino"].parity
        assert ov["passed"] and ov["max_abs_diff"] <= 1e-4 and ov["runtime"] == "OpenVINO CPU fp32"
    assert manifest.activation == "sigmoid"
    assert manifest.max_length == 256
    assert manifest.versions["onnxruntime"] == version("onnxruntime")
    for variant in manifest.variants.values():
        assert sha256_file(artifact / variant.file) == variant.sha256
        assert variant.parity["pairs"] == 200 and variant.parity["all_finite"]
    fp32 = manifest.variants["fp32"].parity
    assert fp32["passed"] and fp32["max_abs_diff"] <= 1e-4
    assert manifest.variants["fp16"].parity["validated_on_gpu"] is False
    assert manifest.gates["fp32_max_abs_diff"] == 1e-4 and manifest.gates["int8_min_spearman"] == -1
    assert not list(artifact.parent.glob(".*export-tmp"))


def test_modernbert_graph_has_no_token_type_ids(modernbert: tuple[Path, Path]) -> None:
    assert load_manifest(modernbert[1]).input_names == ["input_ids", "attention_mask"]


def test_failed_gate_writes_no_artifact(bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "artifact"
    result = invoke(
        "export",
        bert[0],
        "-o",
        output,
        "--calibration",
        calibration_file,
        "--precisions",
        "fp32",
        "--fp32-max-abs-diff",
        "-1",
    )
    assert result.exit_code == 1
    assert "parity gate failed" in result.output
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_int8_activations_restricts_the_recipe_search(
    bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "artifact"
    common = ["--calibration", calibration_file, "--precisions", "fp32,int8", "--int8-activations", "per-token"]
    result = invoke("export", bert[0], "-o", output, *common, *LOOSE_GATES)
    assert result.exit_code == 0, result.output
    int8 = load_manifest(output).variants["int8"]
    assert int8.recipe == {
        "activations": "per-token",
        "fp32_layers": [],
        "weights": "int8 per output channel",
        "embeddings": "int8 per row",
    }
    assert [attempt["recipe"]["activations"] for attempt in int8.parity["attempts"]] == ["per-token"]


def test_existing_output_is_refused_without_force(bert: tuple[Path, Path], calibration_file: Path) -> None:
    result = invoke("export", bert[0], "-o", bert[1], "--calibration", calibration_file)
    assert result.exit_code == 2 and "already exists" in result.output


def test_verify_passes_then_catches_a_broken_variant(
    bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path
) -> None:
    checkpoint, original = bert
    artifact = tmp_path / "artifact"
    shutil.copytree(original, artifact)
    ok = invoke("verify", artifact, "--checkpoint", checkpoint, "--data", calibration_file, *LOOSE_GATES)
    assert ok.exit_code == 0, ok.output
    # Break the fp32 graph: perturb the classifier weights, then re-sign it so only the gate can notice.
    path = artifact / "model.fp32.onnx"
    model = onnx.load(str(path))
    weight = next(t for t in model.graph.initializer if "classifier" in t.name and len(t.dims) == 2)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(model, str(path))
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["variants"]["fp32"]["sha256"] = sha256_file(path)
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    drift = invoke("verify", artifact, "--checkpoint", checkpoint, "--data", calibration_file, *LOOSE_GATES)
    assert drift.exit_code == 1
    assert "FAIL" in drift.output and "fp32" in drift.output


def test_verify_takes_the_reference_settings_from_the_checkpoint(
    bert: tuple[Path, Path], calibration_file: Path, tmp_path: Path
) -> None:
    """A manifest edited to max_length 8, with a tokenizer that carries no truncation of its own (as artifacts
    exported before the tokenizer recorded it): verify must compare against predict at the checkpoint's length."""
    artifact = artifact_copy(bert, tmp_path)
    tokenizer = json.loads((artifact / "tokenizer.json").read_text())
    tokenizer["truncation"] = None
    (artifact / "tokenizer.json").write_text(json.dumps(tokenizer))
    digest = sha256_file(artifact / "tokenizer.json")
    edit_manifest(artifact, lambda m: m.update(max_length=8, tokenizer_sha256=digest))
    result = invoke("verify", artifact, "--checkpoint", bert[0], "--calibration", calibration_file)
    assert result.exit_code == 1 and "parity gate failed" in result.output


def test_unknown_precision_is_a_usage_error(bert: tuple[Path, Path], tmp_path: Path) -> None:
    result = invoke("export", bert[0], "-o", tmp_path / "a", "--precisions", "fp32,int4")
    assert result.exit_code == 2 and "int4" in result.output


def test_checkpoint_must_exist(tmp_path: Path) -> None:
    result = invoke("export", tmp_path / "missing", "-o", tmp_path / "a", "--precisions", "fp32")
    assert result.exit_code == 2 and "not a model directory" in result.output


def test_an_int8_gate_that_nothing_passes_tries_every_recipe(bert: tuple[Path, Path], tmp_path: Path) -> None:
    from export.exporter import export_artifact
    from scorer.errors import GateError
    from scorer.gates import Gates

    table = long_pairs_table(60, seed=4)
    log: list[str] = []
    with pytest.raises(GateError, match="int8"):
        export_artifact(
            bert[0],
            tmp_path / "artifact",
            Gates(int8_min_spearman=1.1),
            table["query"].to_pylist(),
            table["candidate"].to_pylist(),
            ("fp32", "int8"),
            log=log.append,
        )
    assert not (tmp_path / "artifact").exists()
    tried = [line.removeprefix("int8 recipe: ") for line in log if line.startswith("int8 recipe:")]
    assert tried == [
        "per-token-mixed activations, layers kept fp32: none",
        "per-token activations, layers kept fp32: none",
        "per-token-mixed activations, smoothed (alpha 0.5), gptq weight rounding, layers kept fp32: none",
        "per-token activations, smoothed (alpha 0.5), gptq weight rounding, layers kept fp32: none",
        "per-token activations, layers kept fp32: 0 (feed-forward MatMuls only)",
        "per-token activations, layers kept fp32: 0",  # 2 layers: up to half kept in fp32
    ]
