"""A record's text from several columns: one rule in train, export, run, reuse and candidates; a run builds the
text as training did, or exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import tiny_cross_encoder
from conftest import LOOSE_GATES, invoke
from sentence_transformers.cross_encoder import CrossEncoder

from samples.catalogue import pairs_table
from scorer.candidates.catalogue import read_catalogue
from scorer.record_text import as_trained, join, spec_columns

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUERY, CANDIDATE = "q_title,q_brand", "c_title,c_brand"


def test_a_spec_names_one_column_or_several() -> None:
    assert spec_columns("title") == ("title",)
    assert spec_columns("title, brand,model") == ("title", "brand", "model")
    assert spec_columns("a,b", ["a,b", "a", "b"]) == ("a,b",)  # a column of that very name wins
    assert join([["x", None, None, ""], ["y", "z", None, "w"]]) == ["x y", "z", None, " w"]


def test_a_run_takes_the_trained_specs_and_refuses_others() -> None:
    trained = {"query": "title,brand", "candidate": "title,brand"}
    defaults = {"query": "query", "candidate": "candidate"}
    assert as_trained(trained, defaults, []) == (trained, None)
    assert as_trained(None, defaults, []) == (defaults, None)
    assert as_trained(trained, {**defaults, "query": "title, brand"}, ["query"]) == (trained, None)
    _, problem = as_trained(trained, defaults, ["candidate"])
    assert problem is not None and "candidate text built from 'title,brand', not 'candidate'" in problem
    assert "--candidate-col title,brand" in problem


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pairs with title and brand in separate columns (brand null in some rows); a tiny model trained on both
    joined, and its artifact."""
    root = tmp_path_factory.mktemp("record-text")
    table = pairs_table(64, seed=5)
    n = table.num_rows
    brands = pa.array([None if i % 3 == 0 else f"brand{i % 4}" for i in range(n)])
    records = pa.table(
        {
            "q_title": table["query"],
            "q_brand": brands,
            "c_title": table["candidate"],
            "c_brand": pa.array([None if i % 5 == 0 else f"brand{i % 4}" for i in range(n)]),
            "label": table["label"],
        }
    )
    paths = {"records": root / "records.parquet", "checkpoint": root / "checkpoint", "artifact": root / "artifact"}
    pq.write_table(records, paths["records"])
    base = tiny_cross_encoder("bert", root / "base")
    common = ["--base-model", base, "--max-steps", "2", "--batch-size", "16", "--max-length", "64"]
    specs = ["--query-col", QUERY, "--candidate-col", CANDIDATE]
    result = invoke("train", "--train", paths["records"], "-o", paths["checkpoint"], *common, *specs)
    assert result.exit_code == 0, result.output
    result = invoke(
        "export",
        paths["checkpoint"],
        "-o",
        paths["artifact"],
        "--precisions",
        "fp32",
        "--calibration",
        paths["records"],
        *LOOSE_GATES,
    )
    assert result.exit_code == 0, result.output
    return paths


def test_checkpoint_and_manifest_record_the_specs(trained: dict[str, Path]) -> None:
    metrics = json.loads((trained["checkpoint"] / "metrics.json").read_text())
    manifest = json.loads((trained["artifact"] / "manifest.json").read_text())
    assert metrics["text"] == manifest["source"]["text"] == {"query": QUERY, "candidate": CANDIDATE}
    assert manifest["source"]["calibration_pairs"] == 64  # the records file, texts joined as in training


def test_run_builds_the_text_as_training_did(trained: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scored.parquet"
    result = invoke("run", trained["records"], "-m", trained["artifact"], "-o", out, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    records = pq.read_table(trained["records"])
    queries = join([records["q_title"].to_pylist(), records["q_brand"].to_pylist()])
    candidates = join([records["c_title"].to_pylist(), records["c_brand"].to_pylist()])
    assert queries[1] == f"{records['q_title'][1]} brand1" and queries[0] == records["q_title"][0].as_py()
    expected = CrossEncoder(str(trained["checkpoint"]), device="cpu").predict(list(zip(queries, candidates)))
    scored = pq.read_table(out)
    assert scored.num_rows == 64 and scored.column_names == [*records.column_names, "score"]
    np.testing.assert_allclose(scored["score"].to_numpy(), expected, atol=1e-5)
    # the scores of this output are reused for the same joined texts
    again = tmp_path / "again.parquet"
    result = invoke("run", trained["records"], "-m", trained["artifact"], "-o", again, "--reuse", out)
    assert result.exit_code == 0, result.output
    assert pq.read_table(again)["score"].equals(scored["score"])


def test_run_with_other_columns_exits_2(trained: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scored.parquet"
    result = invoke("run", trained["records"], "-m", trained["artifact"], "-o", out, "--query-col", "q_title")
    assert result.exit_code == 2
    assert "trained on query text built from 'q_title,q_brand', not 'q_title'" in result.output
    assert not out.exists()


def test_catalogue_texts_join_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "title": ["tv", None, "cam"], "brand": ["sony", "lg", None]}), path)
    catalogue = read_catalogue([path], [], "id", "title,brand")
    assert catalogue.texts.to_pylist() == ["tv sony", "lg", "cam"]
