"""Listwise input: `scorer run` on (query, documents) rows, the batch form of `CrossEncoder.rank`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import find_shared_data, invoke


def _lists(rows: int = 40) -> pa.Table:
    """The seed's listwise format: the real file where present, else the sample catalogue's lists."""
    if real := find_shared_data("listwise/off-categories-multilingual.parquet"):
        return pq.read_table(real).slice(0, rows)
    from samples.catalogue import listwise_table

    return listwise_table(rows, seed=3, split="test")


def _run(source: Path, artifact: Path, output: Path, *extra: str | Path) -> dict:
    report = output.with_suffix(".json")
    result = invoke("run", source, "-m", artifact, "-o", output, "--report", report, "--precision", "fp32", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


def test_scores_and_ranks_equal_predict_and_rank(bert: tuple[Path, Path], tmp_path: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from train.evaluate import listwise_metrics

    table = _lists()
    source, output = tmp_path / "lists.parquet", tmp_path / "ranked.parquet"
    pq.write_table(table, source)
    report = _run(
        source, bert[1], output, "--labels-col", "scores", "--score-col", "model_scores", "--window-rows", "7"
    )
    ranked = pq.read_table(output)
    assert ranked.drop_columns(["model_scores", "ranks"]).equals(table)  # every input column and row, in order
    model = CrossEncoder(str(bert[0]), device="cpu")
    pairs = [(q, d) for q, docs in zip(table["query"].to_pylist(), table["documents"].to_pylist()) for d in docs]
    expected = model.predict(pairs, batch_size=64, convert_to_numpy=True)
    flat = np.concatenate([np.asarray(s, np.float32) for s in ranked["model_scores"].to_pylist()])
    assert np.abs(flat - expected).max() <= 1e-4
    for query, docs, ranks in zip(
        table["query"].to_pylist(), table["documents"].to_pylist(), ranked["ranks"].to_pylist()
    ):
        order = [hit["corpus_id"] for hit in model.rank(query, docs)]
        assert [order.index(i) + 1 for i in range(len(docs))] == ranks
    assert report["rows"] == table.num_rows and report["pairs"] == len(pairs)
    reference = listwise_metrics(model, table)
    for name in ("map", "mrr@10", "ndcg@10"):
        assert report["ranking"][name] == pytest.approx(reference[name], abs=1e-6), name


def test_empty_and_null_lists_and_documents(bert: tuple[Path, Path], tmp_path: Path) -> None:
    table = pa.table(
        {
            "query": ["dark chocolate", "oat milk", "coffee beans", "rice"],
            "documents": pa.array(
                [["70% cacao bar", "milk chocolate", "dark choc 100g"], [], None, ["basmati", None, "jasmine rice"]],
                pa.list_(pa.string()),
            ),
        }
    )
    source, output = tmp_path / "lists.parquet", tmp_path / "out.parquet"
    pq.write_table(table, source)
    refused = invoke("run", source, "-m", bert[1], "-o", output)
    assert refused.exit_code == 2 and "column 'documents', row 2: null list" in refused.output
    report = _run(source, bert[1], output, "--on-null", "null")
    out = pq.read_table(output)
    ranks = out["ranks"].to_pylist()
    assert sorted(ranks[0]) == [1, 2, 3] and ranks[1] == [] and ranks[2] is None
    assert out["scores"].to_pylist()[1] == [] and out["scores"].to_pylist()[2] is None
    scores, ranks = out["scores"][3].as_py(), out["ranks"][3].as_py()
    assert scores[1] is None and ranks[1] is None and sorted(r for r in ranks if r) == [1, 2]
    assert (report["pairs"], report["pairs_scored"], report["null_pairs"]) == (6, 5, 1)
    pq.write_table(table.slice(3), source)
    refused = invoke("run", source, "-m", bert[1], "-o", tmp_path / "other.parquet")
    assert refused.exit_code == 2 and "column 'documents', row 0: null list or null document" in refused.output


@pytest.mark.parametrize(
    ("columns", "extra", "message"),
    [
        (
            {"documents": pa.array([[1, 2]], pa.list_(pa.int64()))},
            ["--documents-col", "documents"],
            "expected a list of strings",
        ),
        (
            {"documents": pa.array([["a", "b"]]), "labels": pa.array([[1.0]])},
            ["--labels-col", "labels"],
            "column 'labels', row 0: 1 labels for 2 documents",
        ),
        ({"documents": pa.array([["a", "b", "c"]])}, ["--max-documents", "2"], "3 documents, over the limit of 2"),
    ],
)
def test_bad_listwise_input_exits_2(
    bert: tuple[Path, Path], tmp_path: Path, columns: dict, extra: list[str], message: str
) -> None:
    source, output = tmp_path / "bad.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": ["q"], **columns}), source)
    result = invoke("run", source, "-m", bert[1], "-o", output, *extra)
    assert result.exit_code == 2 and message in result.output and str(source) in result.output
    assert not output.exists()


def test_listwise_output_can_be_reused_by_pairs(bert: tuple[Path, Path], tmp_path: Path) -> None:
    table = _lists(10)
    source, lists_out = tmp_path / "lists.parquet", tmp_path / "lists-out.parquet"
    pq.write_table(table, source)
    _run(source, bert[1], lists_out, "--score-col", "model_scores")
    pairs = [(q, d) for q, docs in zip(table["query"].to_pylist(), table["documents"].to_pylist()) for d in docs]
    pair_source, pair_out = tmp_path / "pairs.parquet", tmp_path / "pairs-out.parquet"
    pq.write_table(pa.table({"query": [q for q, _ in pairs], "candidate": [d for _, d in pairs]}), pair_source)
    report = _run(pair_source, bert[1], pair_out, "--reuse", lists_out)
    distinct = len(set(pairs))
    assert report["pairs_reused"] + report["pairs_deduplicated"] == len(pairs) and report["pairs_scored"] == 0
    assert report["pairs_reused"] == distinct
    flat = np.concatenate([np.asarray(s, np.float32) for s in pq.read_table(lists_out)["model_scores"].to_pylist()])
    assert np.array_equal(pq.read_table(pair_out)["score"].to_numpy(), flat)


def test_first_pairs_flattens_lists_and_skips_nulls(tmp_path: Path) -> None:
    from scorer.reader import InputFile
    from scorer.windows import WindowSpec, first_pairs

    rows = {"query": ["q1", "q2", "q3"], "documents": [["a", None, "b"], None, ["c", "d"]]}
    source = tmp_path / "lists.parquet"
    pq.write_table(pa.table(rows), source)
    spec = WindowSpec("query", "candidate", 2, documents_col="documents")
    assert first_pairs([InputFile.describe(source)], spec, 3) == (["q1", "q1", "q3"], ["a", "b", "c"])
    assert first_pairs([InputFile.describe(source)], spec, 10) == (["q1", "q1", "q3", "q3"], ["a", "b", "c", "d"])


def test_scores_and_ranks_need_two_names(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source, output = tmp_path / "lists.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": ["a", "b"], "documents": [["x", "y"], ["z"]]}), source)
    result = invoke("run", source, "-m", bert[1], "-o", output, "--score-col", "r", "--rank-col", "r")
    assert result.exit_code == 2 and "Invalid value for --score-col: 'r' is also the --rank-col" in result.output
    assert not output.exists()


def test_the_seeds_own_lists_keep_their_scores_column(bert: tuple[Path, Path], tmp_path: Path) -> None:
    source, output = tmp_path / "seed.parquet", tmp_path / "out.parquet"
    labels = pa.array([[1.0, 0.0], [0.5]], pa.list_(pa.float32()))
    pq.write_table(pa.table({"query": ["a", "b"], "documents": [["x", "y"], ["z"]], "scores": labels}), source)
    result = invoke("run", source, "-m", bert[1], "-o", output, "--precision", "fp32")
    assert result.exit_code == 0 and "the scores go to 'predicted_scores'" in result.output
    table = pq.read_table(output)
    assert table["scores"].to_pylist() == [[1.0, 0.0], [0.5]]
    assert [len(row) for row in table["predicted_scores"].to_pylist()] == [2, 1]
