"""`scorer run`: output contract, parity with CrossEncoder.predict, batching, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke
from sentence_transformers.cross_encoder import CrossEncoder

from scorer.model import LoadedModel


def _predict(checkpoint: Path, table: pa.Table) -> np.ndarray:
    model = CrossEncoder(str(checkpoint), device="cpu")
    pairs = list(zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True))
    return model.predict(pairs, batch_size=16, show_progress_bar=False)


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_scores_match_predict_and_keep_rows(
    kind: str, request: pytest.FixtureRequest, pairs_file: Path, tmp_path: Path
) -> None:
    checkpoint, artifact = request.getfixturevalue(kind)
    output, report = tmp_path / "scores.parquet", tmp_path / "report.json"
    result = invoke(
        "run",
        pairs_file,
        "-m",
        artifact,
        "-o",
        output,
        "--precision",
        "fp32",
        "--report",
        report,
        "--window-rows",
        "64",
        "--batch-tokens",
        "2048",
    )
    assert result.exit_code == 0, result.output
    source, scored = pq.read_table(pairs_file), pq.read_table(output)
    assert scored.num_rows == source.num_rows == 240
    assert scored.schema.names == [*source.schema.names, "score"]
    assert scored.schema.field("score").type == pa.float32()
    assert scored.drop_columns(["score"]).equals(source)
    expected = _predict(checkpoint, source)
    assert np.abs(scored["score"].to_numpy() - expected).max() <= 1e-4
    stats = json.loads(report.read_text())
    distinct = len(set(zip(source["query"].to_pylist(), source["candidate"].to_pylist(), strict=True)))
    assert stats["rows"] == stats["pairs_scored"] + stats["pairs_deduplicated"] == 240
    assert stats["pairs_scored"] == distinct and stats["pairs_reused"] == 0 and stats["precision"] == "fp32"
    assert stats["model_sha256"] and stats["tokens"] > 0 and stats["padded_tokens"] >= stats["tokens"]


def test_long_pairs_are_truncated_like_predict(bert: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, artifact = bert
    long_text = " ".join(f"word{i}" for i in range(400))
    table = pa.table({"query": [long_text, "short title", long_text], "candidate": ["x", long_text, long_text]})
    path, output, report = tmp_path / "long.parquet", tmp_path / "out.parquet", tmp_path / "r.json"
    pq.write_table(table, path)
    assert invoke("run", path, "-m", artifact, "-o", output, "--precision", "fp32", "--report", report).exit_code == 0
    scores = pq.read_table(output)["score"].to_numpy()
    assert np.abs(scores - _predict(checkpoint, table)).max() <= 1e-4
    assert json.loads(report.read_text())["truncated_pairs"] == 3


def test_padding_efficiency_on_mixed_lengths(bert: tuple[Path, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=600)
    queries = [" ".join(["tok"] * int(n)) for n in lengths]
    table = pa.table({"query": queries, "candidate": [f"item {i}" for i in range(600)]})  # no duplicate pairs
    path, output, report = tmp_path / "mixed.parquet", tmp_path / "out.parquet", tmp_path / "r.json"
    pq.write_table(table, path)
    assert invoke("run", path, "-m", bert[1], "-o", output, "--report", report).exit_code == 0
    assert json.loads(report.read_text())["padding_efficiency"] >= 0.9


def test_scores_do_not_depend_on_window_or_batch_in_fp32(bert: tuple[Path, Path], pairs_file: Path) -> None:
    model = LoadedModel.load(bert[1], "fp32")
    table = pq.read_table(pairs_file)
    queries, candidates = table["query"].to_pylist(), table["candidate"].to_pylist()
    a = model.score(queries, candidates, batch_tokens=512, window_rows=7)
    b = model.score(queries, candidates, batch_tokens=16384, window_rows=4096)
    assert np.abs(a - b).max() <= 1e-5


def test_many_inputs_keep_order(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    table = pq.read_table(pairs_file)
    pq.write_table(table.slice(0, 100), folder / "a.parquet")
    pq.write_table(table.slice(100), folder / "b.parquet")
    output = tmp_path / "out.parquet"
    assert invoke("run", folder, "-m", bert[1], "-o", output, "--precision", "fp32").exit_code == 0
    assert pq.read_table(output)["id"].to_pylist() == table["id"].to_pylist()


def test_empty_input_gives_empty_output_with_schema(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path, output = tmp_path / "empty.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": pa.array([], pa.string()), "candidate": pa.array([], pa.string())}), path)
    assert invoke("run", path, "-m", bert[1], "-o", output).exit_code == 0
    scored = pq.read_table(output)
    assert scored.num_rows == 0 and scored.schema.names == ["query", "candidate", "score"]


def test_null_policy_keeps_rows_with_null_scores(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path, output = tmp_path / "nulls.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": ["a", None, "c"], "candidate": ["x", "y", None]}), path)
    failed = invoke("run", path, "-m", bert[1], "-o", output)
    assert failed.exit_code == 2 and "row 1" in failed.output and "'query'" in failed.output
    assert not output.exists()
    assert invoke("run", path, "-m", bert[1], "-o", output, "--on-null", "null", "--restart").exit_code == 0
    scores = pq.read_table(output)["score"].to_pylist()
    assert scores[0] is not None and scores[1] is None and scores[2] is None


def _bad(tmp_path: Path) -> dict[str, Path]:
    good = pa.table({"query": ["a"], "candidate": ["b"]})
    files = {
        "no_column": pa.table({"query": ["a"], "title": ["b"]}),
        "not_string": pa.table({"query": ["a"], "candidate": [3]}),
    }
    paths = {}
    for name, table in files.items():
        paths[name] = tmp_path / f"{name}.parquet"
        pq.write_table(table, paths[name])
    paths["not_parquet"] = tmp_path / "text.parquet"
    paths["not_parquet"].write_text("query,candidate\na,b\n")
    paths["good"] = tmp_path / "good.parquet"
    pq.write_table(good, paths["good"])
    return paths


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("no_column", "column 'candidate' not found"),
        ("not_string", "column 'candidate' has type int64"),
        ("not_parquet", "not a readable Parquet file"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(bert: tuple[Path, Path], tmp_path: Path, case: str, message: str) -> None:
    paths = _bad(tmp_path)
    source = paths.get(case, tmp_path / "missing.parquet")
    output = tmp_path / "out.parquet"
    result = invoke("run", paths["good"], source, "-m", bert[1], "-o", output)
    assert result.exit_code == 2
    assert message in result.output and str(source) in result.output
    assert not output.exists()
    assert not list(tmp_path.glob(".out.parquet*"))


def test_artifact_without_manifest(tmp_path: Path, pairs_file: Path) -> None:
    (tmp_path / "not-an-artifact").mkdir()
    result = invoke("run", pairs_file, "-m", tmp_path / "not-an-artifact", "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "manifest.json is missing" in result.output


def test_altered_model_file_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    import shutil

    artifact = tmp_path / "artifact"
    shutil.copytree(bert[1], artifact)
    with (artifact / "model.int8.onnx").open("ab") as handle:
        handle.write(b"\0")
    result = invoke("run", pairs_file, "-m", artifact, "-o", tmp_path / "out.parquet", "--precision", "int8")
    assert result.exit_code == 2 and "does not match the sha256" in result.output


def test_output_inside_input_directory_is_refused(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pq.read_table(pairs_file), folder / "a.parquet")
    result = invoke("run", folder, "-m", bert[1], "-o", folder / "scores.parquet")
    assert result.exit_code == 2 and f"is inside {folder}, which this command reads" in result.output


def test_sessions_run_with_all_cores_and_without_spinning() -> None:
    from scorer.session import default_threads, session_options

    options = session_options()
    assert options.intra_op_num_threads == default_threads() and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session_options(3).intra_op_num_threads == 3
