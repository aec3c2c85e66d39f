"""`scorer run --engine ray`: a local Ray instance with 2 actors gives the local engine's output."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer.model import LoadedModel
from scorer.output import staging_dir
from scorer.reader import open_inputs
from scorer.runner import RunJob, RunSettings, run

pytest.importorskip("ray", reason="the `ray` extra is not installed")
pytestmark = pytest.mark.slow

ROWS = 900


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory, pairs_file: Path) -> Path:
    table = pq.read_table(pairs_file).drop_columns(["id"])
    table = pa.concat_tables([table] * (ROWS // table.num_rows + 1)).slice(0, ROWS)
    numbered = pa.array([f"{text} #{i}" for i, text in enumerate(table["candidate"].to_pylist())])
    table = table.set_column(table.schema.get_field_index("candidate"), "candidate", numbered)
    path = tmp_path_factory.mktemp("ray") / "rows.parquet"
    pq.write_table(table, path, row_group_size=250)  # row groups that do not align with the windows
    return path


def _run(source: Path, artifact: Path, output: Path, *extra: str) -> dict:
    report = output.with_suffix(".json")
    args = ["run", source, "-m", artifact, "-o", output, "--window-rows", "100", "--report", report, *extra]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


def test_ray_engine_matches_the_local_engine_and_resumes_its_parts(
    bert: tuple[Path, Path], rows_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for precision in ("int8", "fp32"):
        local, on_ray = tmp_path / f"local-{precision}.parquet", tmp_path / f"ray-{precision}.parquet"
        _run(rows_file, bert[1], local, "--precision", precision)
        report = _run(rows_file, bert[1], on_ray, "--precision", precision, "--engine", "ray", "--workers", "2")
        assert pq.read_table(on_ray).equals(pq.read_table(local)), precision  # bit-identical, in order
        assert (report["engine"], report["pairs_scored"], report["rows"]) == ("ray", ROWS, ROWS)

    # A driver stopped mid-run: the Ray engine keeps its committed windows and scores the rest.
    model, real, calls = LoadedModel.load(bert[1], "int8"), LoadedModel.score_encoded, []

    def stop(self: LoadedModel, *args: object) -> object:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("SIGTERM")
        return real(self, *args)

    output = tmp_path / "resumed.parquet"
    with monkeypatch.context() as patch:
        patch.setattr(LoadedModel, "score_encoded", stop)
        with pytest.raises(KeyboardInterrupt):
            sources = open_inputs([rows_file], "query", "candidate", "score")
            run(RunJob(sources, model, output, RunSettings(window_rows=100), show_progress=False))
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == 3
    report = _run(rows_file, bert[1], output, "--precision", "int8", "--engine", "ray", "--workers", "2")
    assert report["rows_resumed"] == 300 and report["pairs_scored"] == ROWS - 300
    assert pq.read_table(output).equals(pq.read_table(tmp_path / "local-int8.parquet"))


def test_preflight_refuses_what_cannot_run_before_the_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from scorer import ray_engine

    assert ray_engine.preflight(None, 2, 1, cores=2) is None
    too_big = ray_engine.preflight(None, 4000, 1, cores=2)
    assert too_big is not None and "needs 4000 cores; this machine has 2 (give --address" in too_big
    closed = ray_engine.preflight("127.0.0.1:1", 64, 1)  # a cluster may be larger than this machine
    assert closed is not None and "--address 127.0.0.1:1: no Ray cluster answers there" in closed
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "ray" else real(name))
    assert ray_engine.preflight(None, 1, 1) == "--engine ray needs Ray: pip install -e '.[ray]'"


def test_a_local_pool_larger_than_the_machine_exits_2(
    pairs_file: Path, bert: tuple[Path, Path], tmp_path: Path
) -> None:
    output = tmp_path / "out.parquet"
    result = invoke("run", pairs_file, "-m", bert[1], "-o", output, "--engine", "ray", "--workers", "4000")
    assert result.exit_code == 2 and "a local Ray pool of 4000 workers x 1 threads needs 4000 cores" in result.output
    assert not output.exists()
