"""Flags (`scorer.flags`): a bad value exits 2 before any work; float flags refuse NaN and infinities."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import invoke

from scorer.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window-rows", str(2**64)], "Invalid value for '--window-rows'"),
        (["--batch-tokens", str(2**40)], "Invalid value for '--batch-tokens'"),
        (["-o", "{tmp}/" + "n" * 250 + ".parquet"], "file name too long"),
        (["--report", "{tmp}/missing/report.json"], "does not exist"),
        (["-o", "{tmp}/file.txt/out.parquet"], "is not a directory"),
        (["-m", "{tmp}/file.txt"], "is a file; give the artifact directory"),
    ],
)
def test_bad_flags_exit_2_before_any_work(
    bert: tuple[Path, Path], pairs_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "file.txt").write_text("not a directory")
    options = {"-m": str(bert[1]), "-o": str(tmp_path / "out.parquet")}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        value = value.format(tmp=tmp_path)
        if flag in options:
            options[flag] = value
        else:
            extra += [flag, value]
    result = invoke("run", pairs_file, *[x for kv in options.items() for x in kv], *extra)
    assert result.exit_code == 2 and message in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing written, no side files


@pytest.mark.parametrize(
    "args",
    [
        ["run", "x.parquet", "-m", "artifact", "-o", "out.parquet", "--gpu-memory", "nan"],
        ["group", "x.parquet", "-o", "groups.parquet", "--threshold", "nan"],
        ["candidates", "x.parquet", "-o", "p.parquet", "--id-col", "id", "--text-col", "t", "--pairs-per-s", "inf"],
        ["export", "checkpoint", "-o", "artifact", "--threshold", "nan"],
        ["verify", "artifact", "--checkpoint", "checkpoint", "--int8-min-spearman", "-inf"],
        ["train", "--train", __file__, "-o", "checkpoint", "--lr", "nan"],
        ["train", "--train", __file__, "-o", "checkpoint", "--time-budget", "inf"],
        ["train", "--train", __file__, "-o", "checkpoint", "--augment", "nan"],
        ["train-embedder", "--train", __file__, "-o", "model", "--epochs", "nan"],
    ],
)
def test_float_flags_refuse_nan_and_infinities(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "is not a finite number" in result.output
