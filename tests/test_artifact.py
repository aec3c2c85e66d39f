"""The artifact (`scorer.artifact`): a validated manifest, and only the artifact's own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import artifact_copy, edit_manifest, invoke


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("parent", lambda m: m["variants"]["int8"].update(file="../model.int8.onnx"), "must be a plain file name"),
        ("absolute", lambda m: m["variants"]["int8"].update(file="/etc/passwd"), "must be a plain file name"),
        ("tokenizer", lambda m: m.update(tokenizer="../tokenizer.json"), "must be a plain file name"),
        ("variants list", lambda m: m.update(variants=[]), "variants must be a JSON dict"),
        ("string length", lambda m: m.update(max_length="256"), "max_length must be a JSON int"),
        ("bool length", lambda m: m.update(max_length=True), "max_length must be a JSON int"),
        ("activation", lambda m: m.update(activation="softmax"), "unknown activation 'softmax'"),
        ("variant type", lambda m: m["variants"].update(int8="model.int8.onnx"), "variants.int8 must be a JSON dict"),
        ("max_length 8", lambda m: m.update(max_length=8), "the manifest was edited"),
    ],
)
def test_manifest_is_validated(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, name: str, edit: object, message: str
) -> None:
    artifact = artifact_copy(bert, tmp_path)
    shutil.copy(artifact / "model.int8.onnx", tmp_path / "model.int8.onnx")  # what `..` would reach
    shutil.copy(artifact / "tokenizer.json", tmp_path / "tokenizer.json")
    edit_manifest(artifact, edit)
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet", "--precision", "int8")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out.parquet").exists()


def test_manifest_that_is_not_an_object_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    artifact = artifact_copy(bert, tmp_path)
    (artifact / "manifest.json").write_text("[]")
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "must be a JSON object" in result.output


def test_symlink_leaving_the_artifact_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    artifact = artifact_copy(bert, tmp_path)
    outside = tmp_path / "elsewhere.onnx"
    (artifact / "model.int8.onnx").rename(outside)
    (artifact / "model.int8.onnx").symlink_to(outside)
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet", "--precision", "int8")
    assert result.exit_code == 2 and "links outside the artifact directory" in result.output
