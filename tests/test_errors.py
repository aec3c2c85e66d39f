"""Library errors are plain exceptions; the command line maps them to Click errors and exit codes."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import invoke

from demo.run import main as demo_main
from scorer.errors import GateError, InputError, ScorerError, WriteError
from scorer.paths import check_dir_target


@pytest.mark.parametrize(("error", "code"), [(InputError, 2), (GateError, 1), (WriteError, 1)])
def test_library_errors_are_not_click_exceptions(error: type[ScorerError], code: int) -> None:
    assert not issubclass(error, click.ClickException)
    assert error("x").exit_code == code


def test_a_library_error_raised_under_scorer_exits_with_its_code(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    result = invoke("run", missing, "-m", tmp_path, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and str(missing) in result.output and "Traceback" not in result.output


def test_the_demo_reports_library_errors_like_scorer(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not the demo's")
    with pytest.raises(InputError):
        check_dir_target(foreign, [], "--output", ".scorer-demo")
    result = CliRunner().invoke(demo_main, ["--output", str(foreign)])
    assert result.exit_code == 2 and "was not written by this tool" in result.output
    assert (foreign / "notes.txt").read_text() == "not the demo's"
