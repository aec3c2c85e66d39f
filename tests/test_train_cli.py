"""`scorer train` rejects bad input with exit status 2, naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scorer.main import main


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["train", *map(str, args)])


@pytest.fixture
def train_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"query": "q", "candidate": "c", "label": 1}) + "\n")
    bad = tmp_path / "bad.jsonl"
    rows = [
        {"query": "q", "documents": ["a", "b"], "scores": [1.0, 0.0]},
        {"query": "q", "documents": ["a", "b"], "scores": [1.0, 0.0]},
        {"query": "r", "documents": ["a", "b", "c"], "scores": [1.0, 0.0]},
    ]
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"good": good, "bad": bad}


def test_malformed_training_data_exits_2_naming_file_and_row(train_files: dict[str, Path], tmp_path: Path) -> None:
    result = run("--train", train_files["bad"], "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "Invalid value for --train" in result.output
    assert f"{train_files['bad']}: row 3, column 'scores': 2 scores for 3 documents" in result.output
    assert not (tmp_path / "out").exists()


def test_malformed_eval_data_is_reported_against_eval(train_files: dict[str, Path], tmp_path: Path) -> None:
    result = run("--train", train_files["good"], "--eval", train_files["bad"], "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "Invalid value for --eval" in result.output and "row 3" in result.output


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("--train", tmp_path / "absent.parquet", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_output_that_is_not_a_checkpoint_exits_2(train_files: dict[str, Path], tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = run("--train", train_files["good"], "-o", taken)
    assert result.exit_code == 2
    assert (
        "Invalid value for -o/--output" in result.output
        and "not written by this tool (no metrics.json)" in result.output
    )
    assert (taken / "notes.txt").read_text() == "mine"


def test_unloadable_base_model_exits_2(train_files: dict[str, Path], tmp_path: Path) -> None:
    result = run("--train", train_files["good"], "-o", tmp_path / "out", "--base-model", tmp_path / "no-model")
    assert result.exit_code == 2
    assert "Invalid value for --base-model" in result.output and "cannot load base model" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--loss", "mse"), ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "-1"), ("--max-length", "4")],
)
def test_bad_option_values_exit_2(train_files: dict[str, Path], tmp_path: Path, option: str, value: str) -> None:
    result = run("--train", train_files["good"], "-o", tmp_path / "out", option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
