"""Atomic, resumable output (`scorer.output`): resume proves what it keeps, the lock, a second writer, a full disk."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer.model import LoadedModel
from scorer.output import STATE_NAME, staging_dir
from scorer.reader import open_inputs
from scorer.runner import RunJob, RunSettings, run

ROWS = 600
INT8 = ("--precision", "int8")  # the variant `_interrupted` scores with (auto could probe another)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory, pairs_file: Path) -> Path:
    """600 rows of sample pairs with a unique id."""
    table = pq.read_table(pairs_file).drop_columns(["id"])
    table = pa.concat_tables([table] * (ROWS // table.num_rows + 1)).slice(0, ROWS)
    table = table.add_column(0, "row_id", pa.array(range(ROWS), pa.int64()))
    path = tmp_path_factory.mktemp("rows") / "rows.parquet"
    pq.write_table(table, path, row_group_size=200)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, bert: tuple[Path, Path], rows_file: Path) -> pa.Table:
    """The uninterrupted output of `rows_file` with 100-row windows, in int8 like `_interrupted`'s run."""
    output = tmp_path_factory.mktemp("reference") / "out.parquet"
    assert invoke("run", rows_file, "-m", bert[1], "-o", output, *INT8, "--window-rows", "100").exit_code == 0
    return pq.read_table(output)


def _interrupted(artifact: Path, source: Path, output: Path, monkeypatch: pytest.MonkeyPatch, after: int = 3) -> None:
    """Score `source` until the `after`-th window, then stop as SIGTERM would: committed parts stay."""
    model = LoadedModel.load(artifact, "int8")
    real = LoadedModel.score_encoded
    calls: list[int] = []

    def stop(self: LoadedModel, *args: object) -> object:
        calls.append(1)
        if len(calls) == after:
            raise KeyboardInterrupt("SIGTERM")
        return real(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(LoadedModel, "score_encoded", stop)
        with pytest.raises(KeyboardInterrupt):
            sources = open_inputs([source], "query", "candidate", "score")
            run(RunJob(sources, model, output, RunSettings(window_rows=100)))
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == after - 1


def _resume(artifact: Path, source: Path, output: Path, *extra: str) -> object:
    return invoke("run", source, "-m", artifact, "-o", output, *INT8, "--window-rows", "100", *extra)


def test_same_size_edit_in_place_is_caught(
    bert: tuple[Path, Path], rows_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, output = tmp_path / "rows.parquet", tmp_path / "out.parquet"
    table = pq.read_table(rows_file)
    plain = {"row_group_size": 200, "compression": "none", "use_dictionary": False, "write_statistics": False}
    pq.write_table(table, source, **plain)
    _interrupted(bert[1], source, output, monkeypatch)
    queries = table["query"].to_pylist()
    queries[5] = queries[5][:-1] + ("X" if queries[5][-1] != "X" else "Y")  # same length: same size, same footer
    size = source.stat().st_size
    pq.write_table(table.set_column(1, "query", pa.array(queries)), source, **plain)
    assert source.stat().st_size == size
    result = _resume(bert[1], source, output)
    assert result.exit_code == 2 and "changed: inputs" in result.output and not output.exists()


def test_stray_truncated_and_foreign_parts_are_never_assembled(
    bert: tuple[Path, Path], rows_file: Path, reference: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.parquet"
    _interrupted(bert[1], rows_file, output, monkeypatch, after=4)
    parts = sorted(staging_dir(output).glob("part-*.parquet"))
    shutil.copy(parts[0], staging_dir(output) / "part-00000-00000099.parquet")  # a stray window
    shutil.copy(parts[0], parts[1])  # a part holding another window's rows
    parts[2].write_bytes(parts[2].read_bytes()[:200])  # a truncated part
    result = _resume(bert[1], rows_file, output, "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert pq.read_table(output).equals(reference)  # every row once, in order, bit-identical
    assert json.loads((tmp_path / "report.json").read_text())["rows_resumed"] == 100


def test_progress_without_a_readable_state_is_refused_until_restart(
    bert: tuple[Path, Path], rows_file: Path, reference: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out.parquet"
    _interrupted(bert[1], rows_file, output, monkeypatch)
    state = staging_dir(output) / STATE_NAME
    state.write_text(state.read_text()[:40])
    result = _resume(bert[1], rows_file, output)
    assert result.exit_code == 2 and "unreadable" in result.output and "--restart" in result.output
    state.unlink()
    result = _resume(bert[1], rows_file, output)
    assert result.exit_code == 2 and "cannot be proven to belong to this run" in result.output
    assert _resume(bert[1], rows_file, output, "--restart").exit_code == 0
    assert pq.read_table(output).equals(reference)


def test_lock_that_is_a_directory_is_named(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    (tmp_path / ".out.parquet.lock").mkdir()
    result = invoke("run", pairs_file, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and ".out.parquet.lock" in result.output and "not a regular file" in result.output


def test_disk_full_at_start_leaves_no_lock(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import scorer.output

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(scorer.output.os, "replace", full)  # state.json cannot be committed
    result = invoke("run", pairs_file, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1 and "the disk is full" in result.output
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize("command", ["candidates", "group"])
def test_a_second_writer_of_an_output_is_refused(command: str, tmp_path: Path) -> None:
    from scorer.output import OutputLock

    catalogue = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"sku": ["a", "b", "c"], "title": ["sony tv 40", "sony tv 42", "lg phone"]}), catalogue)
    scored = tmp_path / "scored.parquet"
    scores = pa.array([0.9, 0.2], pa.float32())
    pq.write_table(pa.table({"query_id": ["a", "a"], "candidate_id": ["b", "c"], "score": scores}), scored)
    args = {
        "candidates": [catalogue, "--id-col", "sku", "--text-col", "title", "--generators", "lexical"],
        "group": [scored, "--threshold", "0.5"],
    }[command]
    output = tmp_path / "out.parquet"
    with OutputLock(output):  # another process writing this output
        refused = invoke(command, *args, "-o", output)
    assert refused.exit_code == 2 and "is being written by another run" in refused.output
    assert not output.exists()
    done = invoke(command, *args, "-o", output)
    assert done.exit_code == 0, done.output
    assert pq.read_table(output).num_rows == {"candidates": 1, "group": 3}[command]  # one shared-token pair; 3 ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalogue.parquet", "out.parquet", "scored.parquet"]
