"""Work avoidance in `scorer run`: identical pairs scored once, `--reuse` of earlier outputs, the
identity recorded in outputs, and the tuned threshold carried from the checkpoint to `scorer group`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOOSE_GATES, invoke

from scorer.model import LoadedModel
from scorer.output import staging_dir
from scorer.reader import InputFile, open_inputs
from scorer.reuse import SCORER_KEY, ScoreIndex, load_previous, pair_keys
from scorer.runner import RunJob, RunSettings, run

ROWS = 1000


def _night(pairs_file: Path, seed: int, changed: float) -> pa.Table:
    """ROWS distinct pairs; a share `changed` of them get new candidate texts; rows shuffled."""
    table = pq.read_table(pairs_file).drop_columns(["id"])
    table = pa.concat_tables([table] * (ROWS // table.num_rows + 1)).slice(0, ROWS)
    candidates = [f"{text} #{i}" for i, text in enumerate(table["candidate"].to_pylist())]
    rng = np.random.default_rng(seed)
    for i in rng.choice(ROWS, size=int(changed * ROWS), replace=False):
        candidates[i] = f"{candidates[i]} (new pack)"
    table = table.set_column(table.schema.get_field_index("candidate"), "candidate", pa.array(candidates))
    table = table.add_column(0, "query_id", pa.array(range(ROWS), pa.int64()))
    table = table.add_column(1, "candidate_id", pa.array(range(ROWS, 2 * ROWS), pa.int64()))
    return table.take(rng.permutation(ROWS))


def _run(source: Path, artifact: Path, output: Path, *extra: str | Path) -> dict:
    """`scorer run` in int8 (the variant these tests load directly; auto could probe another), `extra` last."""
    report = output.with_suffix(".json")
    result = invoke(
        "run",
        source,
        "-m",
        artifact,
        "-o",
        output,
        "--precision",
        "int8",
        "--window-rows",
        "128",
        "--report",
        report,
        *extra,
    )
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_reused_scores_are_bit_identical_to_a_fresh_run(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, precision: str
) -> None:
    night1, night2 = tmp_path / "night1.parquet", tmp_path / "night2.parquet"
    pq.write_table(_night(pairs_file, seed=1, changed=0.0), night1)
    pq.write_table(_night(pairs_file, seed=2, changed=0.1), night2)
    scores1 = tmp_path / "scores1.parquet"
    _run(night1, bert[1], scores1, "--precision", precision)
    fresh, reused = tmp_path / "fresh.parquet", tmp_path / "reused.parquet"
    _run(night2, bert[1], fresh, "--precision", precision)
    report = _run(night2, bert[1], reused, "--precision", precision, "--reuse", scores1)
    assert (report["pairs_reused"], report["pairs_scored"], report["pairs_deduplicated"]) == (900, 100, 0)
    assert pq.read_table(reused).equals(pq.read_table(fresh))  # every row, in order, bit for bit


def test_identical_pairs_are_scored_once_within_and_across_windows(bert: tuple[Path, Path], tmp_path: Path) -> None:
    queries = ["dark chocolate 70% 100 g", "DRK CHCLT BAR, COCONUT", "oat milk 1 l"] * 200
    candidates = ["70 % Cacao Dark Chocolate", "Dark Chocolate With Coconut", "oat drink barista"] * 200
    source, output = tmp_path / "dups.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": queries, "candidate": candidates}), source)
    report = _run(source, bert[1], output, "--precision", "fp32")
    assert (report["pairs_scored"], report["pairs_deduplicated"]) == (3, 597)
    expected = LoadedModel.load(bert[1], "fp32").score(queries[:3], candidates[:3])
    assert np.array_equal(pq.read_table(output)["score"].to_numpy(), np.tile(expected, 200))


def test_reuse_from_another_variant_or_a_foreign_file_is_refused(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    scores = tmp_path / "int8.parquet"
    _run(pairs_file, bert[1], scores, "--precision", "int8")
    output = tmp_path / "out.parquet"
    result = invoke("run", pairs_file, "-m", bert[1], "-o", output, "--precision", "fp32", "--reuse", scores)
    assert result.exit_code == 2 and f"--reuse {scores}: scored by another model or variant" in result.output
    assert "precision" in result.output and not output.exists()
    result = invoke("run", pairs_file, "-m", bert[1], "-o", output, "--reuse", pairs_file)
    assert result.exit_code == 2 and "not an output of `scorer run`" in result.output


def test_resume_with_reuse_is_bit_identical(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night1, night2 = tmp_path / "night1.parquet", tmp_path / "night2.parquet"
    pq.write_table(_night(pairs_file, seed=1, changed=0.0), night1)
    pq.write_table(_night(pairs_file, seed=2, changed=0.3), night2)
    scores1, expected = tmp_path / "scores1.parquet", tmp_path / "expected.parquet"
    _run(night1, bert[1], scores1)
    _run(night2, bert[1], expected, "--reuse", scores1)

    model = LoadedModel.load(bert[1], "int8")
    real, calls = LoadedModel.score_encoded, []

    def stop(self: LoadedModel, *args: object) -> object:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("SIGTERM")
        return real(self, *args)

    output = tmp_path / "out.parquet"
    reuse = [InputFile.describe(scores1)]
    with monkeypatch.context() as patch:
        patch.setattr(LoadedModel, "score_encoded", stop)
        with pytest.raises(KeyboardInterrupt):
            sources = open_inputs([night2], "query", "candidate", "score")
            previous, _ = load_previous([scores1], model.identity)
            run(RunJob(sources, model, output, RunSettings(window_rows=128), False, False, reuse, previous))
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == 3
    report = _run(night2, bert[1], output, "--reuse", scores1)
    assert report["rows_resumed"] == 3 * 128
    assert pq.read_table(output).equals(pq.read_table(expected))
    result = invoke("run", night2, "-m", bert[1], "-o", tmp_path / "other.parquet", "--reuse", night1)
    assert result.exit_code == 2  # an input is not an output


def test_threshold_travels_from_checkpoint_to_group(
    bert: tuple[Path, Path], pairs_file: Path, calibration_file: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(bert[0], checkpoint)
    (checkpoint / "metrics.json").write_text(json.dumps({"threshold": 0.625}))
    artifact = tmp_path / "artifact"
    exported = invoke(
        "export", checkpoint, "-o", artifact, "--precisions", "fp32", "--calibration", calibration_file, *LOOSE_GATES
    )
    assert exported.exit_code == 0, exported.output
    source, scores = tmp_path / "night.parquet", tmp_path / "scores.parquet"
    pq.write_table(_night(pairs_file, seed=1, changed=0.0), source)
    _run(source, artifact, scores, "--precision", "fp32")
    recorded = json.loads(pq.read_schema(scores).metadata[SCORER_KEY])
    assert recorded["threshold"] == 0.625 and recorded["precision"] == "fp32"
    assert recorded["artifact"] == str(artifact.resolve())
    assert (
        recorded["model_sha256"] == json.loads((artifact / "manifest.json").read_text())["variants"]["fp32"]["sha256"]
    )
    groups, report = tmp_path / "groups.parquet", tmp_path / "groups.json"
    assert invoke("group", scores, "-o", groups, "--report", report).exit_code == 0
    grouped = json.loads(report.read_text())
    assert grouped["threshold"] == 0.625 and grouped["threshold_source"].startswith("metadata of")


def test_score_index_stays_compact() -> None:
    index, rng = ScoreIndex(), np.random.default_rng(0)
    for _ in range(20):
        keys = np.frombuffer(rng.bytes(16 * 5000), dtype="S16").copy()
        index.add(keys, rng.random(5000).astype(np.float32))
    found, _ = index.get(keys)
    assert len(index) == 100_000 and found.all()
    assert sum(k.nbytes + s.nbytes for k, s in index._runs) == 20 * len(index)  # 10M pairs: 200 MB
    assert len(index._runs) <= 8
    assert pair_keys(["a"], ["bc"])[0] != pair_keys(["ab"], ["c"])[0]


def _written_night(pairs_file: Path, tmp_path: Path, seed: int) -> Path:
    """A night of ROWS distinct pairs written to `tmp_path`."""
    night = tmp_path / "night.parquet"
    pq.write_table(_night(pairs_file, seed=seed, changed=0.0), night)
    return night


def _rewrite(path: Path, edit: object, target: Path) -> Path:
    """`path` with its score column passed through `edit` and its `scorer run` metadata kept."""
    table = pq.read_table(path)
    index = table.schema.get_field_index("score")
    table = table.set_column(index, "score", edit(table["score"]))  # type: ignore[operator]
    pq.write_table(table.replace_schema_metadata(pq.read_schema(path).metadata), target)
    return target


def _nudged(scores: pa.ChunkedArray) -> pa.Array:
    values = scores.to_numpy().copy()
    values[7] = min(values[7] + 0.05, 1.0) if values[7] < 0.95 else values[7] - 0.05
    return pa.array(values, pa.float32())


def _nan(scores: pa.ChunkedArray) -> pa.Array:
    values = scores.to_numpy().copy()
    values[3] = np.nan
    return pa.array(values, pa.float32())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_nudged, "do not match the content digest `scorer run` recorded"),
        (_nan, "score nan is not a sigmoid score"),
        (lambda scores: pa.array((scores.to_numpy() > 0.5).astype(np.int8)), "has type int8, not scores"),
        (lambda scores: pa.array(scores.to_numpy() + 2, pa.float32()), "is not a sigmoid score"),
    ],
)
def test_reused_scores_are_checked_before_they_are_trusted(
    pairs_file: Path, bert: tuple[Path, Path], tmp_path: Path, edit: object, message: str
) -> None:
    night = _written_night(pairs_file, tmp_path, seed=1)
    scored = tmp_path / "scored.parquet"
    _run(night, bert[1], scored)
    assert json.loads(pq.read_schema(scored).metadata[SCORER_KEY])["content"]["rows"] == ROWS
    edited = _rewrite(scored, edit, tmp_path / "edited.parquet")
    output = tmp_path / "again.parquet"
    result = invoke("run", night, "-m", bert[1], "-o", output, "--precision", "int8", "--reuse", edited)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not output.exists()


def test_an_output_without_a_digest_is_scored_again(pairs_file: Path, bert: tuple[Path, Path], tmp_path: Path) -> None:
    night = _written_night(pairs_file, tmp_path, seed=2)
    scored = tmp_path / "scored.parquet"
    _run(night, bert[1], scored)
    metadata = pq.read_schema(scored).metadata
    record = json.loads(metadata[SCORER_KEY])
    del record["content"]
    older = tmp_path / "older.parquet"
    pq.write_table(pq.read_table(scored).replace_schema_metadata({**metadata, SCORER_KEY: json.dumps(record)}), older)
    report = _run(night, bert[1], tmp_path / "again.parquet", "--reuse", older)
    assert report["pairs_reused"] == 0 and report["pairs_scored"] == ROWS
    assert pq.read_table(tmp_path / "again.parquet")["score"].equals(pq.read_table(scored)["score"])


def test_auto_prefers_the_variant_of_the_reused_outputs(
    pairs_file: Path, bert: tuple[Path, Path], tmp_path: Path
) -> None:
    night = _written_night(pairs_file, tmp_path, seed=3)
    first = tmp_path / "first.parquet"
    result = invoke("run", night, "-m", bert[1], "-o", first, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    report = tmp_path / "second.json"
    args = ["run", night, "-m", bert[1], "-o", tmp_path / "second.parquet", "--reuse", first, "--report", report]
    result = invoke(*args)  # auto: fp32 passed here, so the night reuses every score
    assert result.exit_code == 0, result.output
    second = json.loads(report.read_text())
    assert second["precision"] == "fp32" and second["pairs_reused"] == ROWS and second["pairs_scored"] == 0
    assert "the variant of the --reuse outputs, which passed here" in second["precision_choice"]["reason"]
    # outputs of a variant this artifact lacks: auto rescores them, with a warning, instead of failing the night
    metadata = pq.read_schema(first).metadata
    record = json.loads(metadata[SCORER_KEY]) | {"precision": "fp16"}
    other = tmp_path / "other.parquet"
    pq.write_table(pq.read_table(first).replace_schema_metadata({**metadata, SCORER_KEY: json.dumps(record)}), other)
    args = ["run", night, "-m", bert[1], "-o", tmp_path / "third.parquet", "--reuse", other, "--report", report]
    result = invoke(*args)
    assert result.exit_code == 0 and "scored by another variant (fp16, not" in result.output
    assert json.loads(report.read_text())["pairs_reused"] == 0
    explicit = invoke(
        "run", night, "-m", bert[1], "-o", tmp_path / "4.parquet", "--precision", "int8", "--reuse", first
    )
    assert explicit.exit_code == 2 and "scored by another model or variant" in explicit.output


def test_a_reuse_file_missing_columns_or_of_another_kind_exits_2(
    pairs_file: Path, bert: tuple[Path, Path], tmp_path: Path
) -> None:
    night = _written_night(pairs_file, tmp_path, seed=4)
    scored = tmp_path / "scored.parquet"
    _run(night, bert[1], scored)
    table = pq.read_table(scored)
    cut = tmp_path / "cut.parquet"
    pq.write_table(table.drop_columns(["candidate"]).replace_schema_metadata(table.schema.metadata), cut)
    groups = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"id": [1, 2], "group_id": [0, 0]}), groups)
    for reused, message in ((cut, "not a readable scored output"), (groups, "not an output of `scorer run`")):
        result = invoke(
            "run", night, "-m", bert[1], "-o", tmp_path / "o.parquet", "--precision", "int8", "--reuse", reused
        )
        assert result.exit_code == 2 and f"--reuse {reused}: {message}" in result.output, result.output
