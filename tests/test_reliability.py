"""Nightly-run reliability: resume after SIGKILL, SIGTERM, locks, validation before work, bounded memory."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer.model import LoadedModel
from scorer.output import staging_dir
from scorer.reader import open_inputs
from scorer.runner import RunJob, RunSettings, run

ROWS = 6000


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory, pairs_file: Path) -> Path:
    """6000 distinct rows of real-looking pairs (the sample pairs repeated, each candidate numbered)."""
    table = pq.read_table(pairs_file).drop_columns(["id"])
    repeated = pa.concat_tables([table] * (ROWS // table.num_rows))
    numbered = [f"{text} #{i}" for i, text in enumerate(repeated["candidate"].to_pylist())]
    repeated = repeated.set_column(repeated.schema.get_field_index("candidate"), "candidate", pa.array(numbered))
    repeated = repeated.add_column(0, "row_id", pa.array(range(repeated.num_rows), pa.int64()))
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(repeated, path, row_group_size=1000)
    return path


def _command(source: Path, artifact: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scorer",
        "run",
        str(source),
        "-m",
        str(artifact),
        "-o",
        str(output),
        "--window-rows",
        "100",
        "--no-progress",
        *extra,
    ]


def _start_and_interrupt(command: list[str], output: Path, sig: int, parts: int = 5) -> subprocess.CompletedProcess:
    """Start a run, wait until `parts` windows are committed, send `sig`, return the finished process."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(staging_dir(output).glob("part-*.parquet"))) < parts:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_resume_after_sigkill_is_bit_identical(
    bert: tuple[Path, Path], big_input: Path, tmp_path: Path, precision: str
) -> None:
    artifact = bert[1]
    reference = tmp_path / "reference.parquet"
    subprocess.run(_command(big_input, artifact, reference, "--precision", precision), check=True)

    output = tmp_path / "resumed.parquet"
    killed = _start_and_interrupt(
        _command(big_input, artifact, output, "--precision", precision), output, signal.SIGKILL
    )
    assert killed.returncode == -signal.SIGKILL
    assert not output.exists()
    done_before = len(list(staging_dir(output).glob("part-*.parquet")))
    assert 0 < done_before < ROWS // 100

    resumed = subprocess.run(
        _command(big_input, artifact, output, "--precision", precision, "--report", str(tmp_path / "report.json")),
        check=False,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    expected, actual = pq.read_table(reference), pq.read_table(output)
    assert actual.num_rows == ROWS
    assert actual.equals(expected)  # every row once, in order, bit-identical scores
    assert not staging_dir(output).exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows_resumed"] == done_before * 100
    assert report["pairs_scored"] == ROWS - done_before * 100


def test_sigterm_saves_progress_and_says_how_to_resume(
    bert: tuple[Path, Path], big_input: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.parquet"
    stopped = _start_and_interrupt(_command(big_input, bert[1], output), output, signal.SIGTERM)
    assert stopped.returncode == 1
    assert "SIGTERM" in stopped.stderr and "run the same command again to resume" in stopped.stderr
    assert not output.exists() and staging_dir(output).exists()
    finished = subprocess.run(_command(big_input, bert[1], output), check=False, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert pq.read_table(output)["row_id"].to_pylist() == list(range(ROWS))


def test_interrupt_stops_the_reader_thread_before_returning(
    bert: tuple[Path, Path], big_input: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader thread left running in native code at interpreter exit aborts the process (CI saw it)."""
    model = LoadedModel.load(bert[1], "fp32")
    real = LoadedModel.score_encoded
    calls = []

    def interrupted(self: LoadedModel, *args: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("SIGTERM")
        return real(self, *args)

    monkeypatch.setattr(LoadedModel, "score_encoded", interrupted)
    sources = open_inputs([big_input], "query", "candidate", "score")
    output = tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):
        run(RunJob(sources, model, output, RunSettings(window_rows=100), show_progress=False))
    assert not [thread for thread in threading.enumerate() if thread.name == "scorer-reader"]
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == 2


def test_changed_input_is_refused_until_restart(bert: tuple[Path, Path], big_input: Path, tmp_path: Path) -> None:
    source = tmp_path / "input.parquet"
    source.write_bytes(big_input.read_bytes())
    output = tmp_path / "out.parquet"
    _start_and_interrupt(_command(source, bert[1], output), output, signal.SIGKILL)
    table = pq.read_table(source)
    pq.write_table(table.slice(0, ROWS - 1), source, row_group_size=1000)
    refused = invoke("run", source, "-m", bert[1], "-o", output, "--window-rows", "100")
    assert refused.exit_code == 2 and "changed: inputs" in refused.output and "--restart" in refused.output
    restarted = invoke("run", source, "-m", bert[1], "-o", output, "--window-rows", "100", "--restart")
    assert restarted.exit_code == 0
    assert pq.read_table(output).num_rows == ROWS - 1


def test_concurrent_run_is_refused_and_stale_lock_recovered(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.parquet"
    lock_path = tmp_path / ".out.parquet.lock"
    with lock_path.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242")
        held.flush()
        refused = invoke("run", pairs_file, "-m", bert[1], "-o", output)
        assert refused.exit_code == 2 and "being written by another run (pid 4242)" in refused.output
    # The lock file is left behind by a dead process: not held, so the next run proceeds.
    assert lock_path.exists()
    assert invoke("run", pairs_file, "-m", bert[1], "-o", output).exit_code == 0
    assert output.exists() and not lock_path.exists()


def test_full_disk_keeps_progress_and_writes_nothing(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scorer.output

    output = tmp_path / "out.parquet"
    real_write = scorer.output.pq.write_table
    calls = {"n": 0}

    def fill_up(table: pa.Table, where: Path) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(table, where)

    monkeypatch.setattr(scorer.output.pq, "write_table", fill_up)
    failed = invoke("run", pairs_file, "-m", bert[1], "-o", output, "--window-rows", "100")
    assert failed.exit_code == 1 and "the disk is full" in failed.output
    assert not output.exists()
    assert len(list(staging_dir(output).glob("part-*.parquet"))) == 1
    assert not list(staging_dir(output).glob("*.tmp"))
    monkeypatch.setattr(scorer.output.pq, "write_table", real_write)
    assert invoke("run", pairs_file, "-m", bert[1], "-o", output, "--window-rows", "100").exit_code == 0
    assert pq.read_table(output).num_rows == pq.read_table(pairs_file).num_rows


def test_invalid_utf8_in_binary_column_names_the_row(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    pq.write_table(
        pa.table({"query": pa.array([b"ok", b"fine", b"\xff\xfe"], pa.binary()), "candidate": ["a", "b", "c"]}), path
    )
    result = invoke("run", path, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and "row 2: invalid UTF-8" in result.output


def test_valid_binary_column_is_scored(bert: tuple[Path, Path], tmp_path: Path) -> None:
    path, output = tmp_path / "binary.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": pa.array([b"caf\xc3\xa9 noir 250g"], pa.binary()), "candidate": ["cafe"]}), path)
    assert invoke("run", path, "-m", bert[1], "-o", output).exit_code == 0
    assert pq.read_table(output).num_rows == 1


def test_corrupt_parquet_is_named(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(pairs_file.read_bytes()[:-100])
    result = invoke("run", pairs_file, truncated, "-m", bert[1], "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2 and str(truncated) in result.output
    assert not (tmp_path / "out.parquet").exists()


def test_null_found_before_any_work(bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path) -> None:
    table = pq.read_table(pairs_file)
    candidates = table["candidate"].to_pylist()
    candidates[150] = None
    bad = tmp_path / "late_null.parquet"
    pq.write_table(table.set_column(2, "candidate", pa.array(candidates, pa.string())), bad, row_group_size=50)
    output = tmp_path / "out.parquet"
    result = invoke("run", bad, "-m", bert[1], "-o", output, "--window-rows", "10")
    assert result.exit_code == 2 and "column 'candidate', row 150" in result.output
    assert not staging_dir(output).exists()  # refused before the first window was scored


def _peak_rss_kb(command: list[str]) -> int:
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    return int(
        subprocess.run(
            [sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )


def test_memory_stays_flat_as_input_grows(bert: tuple[Path, Path], big_input: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(big_input).slice(0, ROWS // 6), small, row_group_size=1000)
    large = tmp_path / "large.parquet"
    table = pq.read_table(big_input)
    pq.write_table(pa.concat_tables([table] * 4), large, row_group_size=1000)  # 24x the small input
    rss_small = _peak_rss_kb(_command(small, bert[1], tmp_path / "a.parquet", "--window-rows", "500"))
    rss_large = _peak_rss_kb(_command(large, bert[1], tmp_path / "b.parquet", "--window-rows", "500"))
    assert rss_large < rss_small * 1.15 + 20_000, (rss_small, rss_large)


def test_an_attempt_stopped_on_bad_input_needs_no_restart_once_fixed(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path
) -> None:
    table = pq.read_table(pairs_file).drop_columns(["id"])
    queries = [text.encode() for text in table["query"].to_pylist()]
    queries[150] = b"bad \xff byte"  # found in the second window, after the first is committed
    source, output = tmp_path / "input.parquet", tmp_path / "out.parquet"
    broken = table.set_column(0, "query", pa.array(queries, pa.binary()).view(pa.string()))
    pq.write_table(broken, source)
    args = ["run", source, "-m", bert[1], "-o", output, "--window-rows", "100", "--precision", "fp32"]
    stopped = invoke(*args)
    assert stopped.exit_code == 2 and "column 'query', row 150: invalid UTF-8" in stopped.output
    assert list(staging_dir(output).glob("part-*.parquet")) and not output.exists()
    assert invoke(*args).exit_code == 2  # the same bad input: stopped again, progress kept
    pq.write_table(table, source)  # fixed
    report = tmp_path / "report.json"
    fixed = invoke(*args, "--report", report)
    assert fixed.exit_code == 0, fixed.output
    assert pq.read_table(output).num_rows == table.num_rows and not staging_dir(output).exists()
    assert "stopped on bad input" in json.loads(report.read_text())["discarded"]
