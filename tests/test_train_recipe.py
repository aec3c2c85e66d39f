"""The pair recipe: chosen by the data, both orders, best epoch kept, time budget, named columns."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from builders import tiny_cross_encoder
from click.testing import CliRunner
from safetensors.torch import load_file
from sentence_transformers.cross_encoder import CrossEncoder

from samples.catalogue import listwise_table, pairs_table
from scorer.main import main
from scorer.precision import cpu_info
from train import trainer as train_trainer
from train.config import RunOptions, TrainConfig, choose_recipe
from train.data import both_orders, read_files
from train.errors import DataError
from train.selection import Selection
from train.trainer import positive_weight, train, warmup_steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random BERT; 96 train pairs, 64 eval pairs, 16 lists; pairs with full records beside the titles."""
    root = tmp_path_factory.mktemp("recipe")
    paths = {"bert": tiny_cross_encoder("bert", root / "bert")}
    for name, table in {
        "pairs": pairs_table(96, seed=3),
        "eval": pairs_table(64, seed=3, split="valid"),
        "lists": listwise_table(16, seed=3),
    }.items():
        paths[name] = root / f"{name}.parquet"
        pq.write_table(table, paths[name])
    records = pairs_table(24, seed=4)
    paths["records"] = root / "records.parquet"
    pq.write_table(
        records.append_column(
            "query_text", pa.array([f"{q} | brand x" for q in records["query"].to_pylist()])
        ).append_column("candidate_text", pa.array([f"{c} | brand y" for c in records["candidate"].to_pylist()])),
        paths["records"],
    )
    return paths


def _config(base: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {"base_model": str(base), "batch_size": 32, "lr": 1e-3, "max_length": 64}
    return TrainConfig(**(settings | overrides))  # type: ignore[arg-type]


def _fake_f1(monkeypatch: pytest.MonkeyPatch, sequence: list[float]) -> list[torch.Tensor]:
    """Make the eval F1 follow `sequence`; returns the classifier weights seen at each evaluation."""
    seen: list[torch.Tensor] = []
    scores = iter(sequence)

    def fake(model: CrossEncoder, pairs: pa.Table) -> float:
        seen.append(model.model.classifier.weight.detach().clone())
        return next(scores)

    monkeypatch.setattr("train.selection.valid_f1", fake)
    return seen


def test_recipe_follows_the_data_format() -> None:
    assert choose_recipe(["pairs", "pairs"], None) == ("pairs", "training data is pairs")
    assert choose_recipe(["listwise"], None) == ("lambda", "training data is listwise")
    assert choose_recipe(["pairs", "listwise"], None) == ("lambda", "training data holds lists")
    assert choose_recipe(["pairs"], "bce") == ("bce", "loss 'bce' was asked for")
    assert choose_recipe(["listwise"], "lambda") == ("lambda", "loss 'lambda' was asked for")


def test_both_orders_doubles_the_rows_with_sides_swapped() -> None:
    pairs = pa.table({"query": ["a", "b"], "candidate": ["x", "y"], "label": pa.array([1.0, 0.0], pa.float32())})
    doubled = both_orders(pairs)
    assert doubled.num_rows == 4
    assert doubled["query"].to_pylist() == ["a", "b", "x", "y"]
    assert doubled["candidate"].to_pylist() == ["x", "y", "a", "b"]
    assert doubled["label"].to_pylist() == [1.0, 0.0, 1.0, 0.0]


def test_positive_weight_is_the_class_ratio() -> None:
    labels = pa.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.2], pa.float32())
    assert positive_weight(pa.table({"label": labels})) == pytest.approx(5 / 2)
    assert positive_weight(pa.table({"label": pa.array([0.0, 0.0], pa.float32())})) == 1.0


def test_pair_recipe_warms_up_over_part_of_one_epoch() -> None:
    config = TrainConfig(batch_size=32, warmup_ratio=0.1)
    assert warmup_steps(config, "pairs", 11486) == 36  # 359 steps an epoch, whatever the epochs cap
    assert warmup_steps(config, "lambda", 11486) == warmup_steps(config, "bce", 11486) == 0  # the ratio of the run


def test_pair_data_runs_the_pair_recipe_listwise_the_seed(toy: dict[str, Path], tmp_path: Path) -> None:
    pairs = train([toy["pairs"]], tmp_path / "p", _config(toy["bert"], epochs=1), [toy["eval"]], progress=False)
    assert (pairs["recipe"], pairs["recipe_reason"]) == ("pairs", "training data is pairs")
    assert pairs["config"]["loss"] == "bce" and pairs["config"]["epochs"] == 1
    assert pairs["train"]["rows"] == 192 and pairs["train"]["steps"] == 6  # both orders, 32 pairs a step
    assert pairs["train"]["positive_weight"] == pytest.approx(positive_weight(read_files([toy["pairs"]])[0].table))
    assert pairs["train"]["precision"] == ("bf16" if cpu_info().has_bf16 else "fp32")
    assert pairs["train"]["stopped"] == "epochs done" and pairs["train"]["pairs_per_s"] > 0
    assert [e["epoch"] for e in pairs["selection"]["history"]] == [1.0]
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["recipe"] == "pairs"
    assert "| recipe | pairs (training data is pairs) |" in (tmp_path / "p" / "README.md").read_text()

    one = train(
        [toy["pairs"]],
        tmp_path / "o",
        _config(toy["bert"], max_steps=2),
        progress=False,
        options=RunOptions(both_orders=False, bf16=False),
    )
    assert (one["train"]["rows"], one["train"]["precision"], one["train"]["stopped"]) == (96, "fp32", "max steps done")
    assert one["selection"] == {"rule": "last weights", "best": None, "history": []}

    lists = train([toy["lists"]], tmp_path / "l", _config(toy["bert"], max_steps=2, batch_size=None), progress=False)
    assert (lists["recipe"], lists["recipe_reason"]) == ("lambda", "training data is listwise")
    assert (lists["config"]["loss"], lists["config"]["batch_size"], lists["config"]["lr"]) == ("lambda", 8, 1e-3)
    assert (lists["train"]["unit"], lists["train"]["precision"]) == ("lists", "fp32")


def test_bf16_autocasts_training_only_and_only_the_run_that_asks(
    toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bf16 covers the training forward passes; evaluation and a later fp32 run in the process stay fp32."""
    seen: list[tuple[str, bool]] = []
    load = train_trainer.load_base_model

    def load_and_watch(config: TrainConfig) -> CrossEncoder:
        model = load(config)
        model.model.classifier.register_forward_hook(
            lambda module, args, output: seen.append(
                ("train" if module.training else "eval", torch.is_autocast_enabled("cpu"))
            )
        )
        return model

    monkeypatch.setattr(train_trainer, "load_base_model", load_and_watch)
    for name, bf16 in (("bf16", True), ("fp32", False)):
        seen.clear()
        options = RunOptions(bf16=bf16)
        metrics = train(
            [toy["pairs"]], tmp_path / name, _config(toy["bert"], max_steps=2), [toy["eval"]], False, options
        )
        assert metrics["train"]["precision"] == name
        assert {mode: autocast for mode, autocast in seen} == {"train": bf16, "eval": False}


def test_the_best_epoch_is_kept_not_the_last(
    toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _fake_f1(monkeypatch, [0.2, 0.7, 0.5, 0.4, 0.9])
    options = RunOptions(patience=2)
    metrics = train([toy["pairs"]], tmp_path / "c", _config(toy["bert"], epochs=5), [toy["eval"]], False, options)
    assert [e["valid_f1"] for e in metrics["selection"]["history"]] == [0.2, 0.7, 0.5, 0.4]
    assert metrics["train"]["stopped"] == "early stop" and metrics["train"]["epochs"] == 4.0
    assert metrics["selection"]["best"] == {"epoch": 2.0, "step": 12, "valid_f1": 0.7}
    saved = load_file(tmp_path / "c" / "model.safetensors")["classifier.weight"]
    assert torch.equal(saved, seen[1]) and not torch.equal(saved, seen[3])


def test_time_budget_stops_training_and_keeps_the_best_so_far(
    toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _fake_f1(monkeypatch, [0.5, 0.9, 0.6])
    ticks = itertools.count(0, 4)  # 4 fake seconds a step: a 1-minute budget ends at step 15, mid epoch 3
    monkeypatch.setattr(Selection, "clock", staticmethod(lambda: next(ticks)))
    options = RunOptions(time_budget=1.0, patience=5)
    metrics = train([toy["pairs"]], tmp_path / "b", _config(toy["bert"], epochs=10), [toy["eval"]], False, options)
    assert metrics["train"]["stopped"] == "time budget"
    assert metrics["train"]["steps"] == 15 and metrics["train"]["epochs"] == pytest.approx(2.5)
    assert [(e["step"], e["valid_f1"]) for e in metrics["selection"]["history"]] == [(6, 0.5), (12, 0.9), (15, 0.6)]
    saved = load_file(tmp_path / "b" / "model.safetensors")["classifier.weight"]
    assert torch.equal(saved, seen[1]) and not torch.equal(saved, seen[2])


def test_named_columns_are_read_as_the_pair(toy: dict[str, Path]) -> None:
    table = read_files([toy["records"]], "query_text", "candidate_text")[0].table
    raw = pq.read_table(toy["records"])
    assert table.column_names == ["query", "candidate", "label"]
    assert table["query"].to_pylist() == raw["query_text"].to_pylist()
    assert table["candidate"].to_pylist() == raw["candidate_text"].to_pylist()
    with pytest.raises(DataError, match=r"records.parquet: missing column\(s\) 'title' named as the pair columns"):
        read_files([toy["records"]], "title", "candidate")


def test_named_column_errors_name_the_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    rows = [
        {"query_text": "a", "candidate_text": "b", "label": 1},
        {"query_text": "a", "candidate_text": 3, "label": 0},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError, match=r"bad.jsonl: row 2, column 'candidate_text': expected text, got 3"):
        read_files([path], "query_text", "candidate_text")


def test_cli_trains_on_named_columns_within_a_budget(toy: dict[str, Path], tmp_path: Path) -> None:
    common = ["train", "--train", toy["records"], "--base-model", toy["bert"], "--candidate-col", "candidate_text"]
    args = [*common, "-o", tmp_path / "cli", "--query-col", "query_text", "--time-budget", "5", "--epochs", "2"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert metrics["text"] == {"query": "query_text", "candidate": "candidate_text"}
    assert metrics["options"]["time_budget"] == 5.0 and metrics["train"]["rows"] == 48
    assert "recipe: pairs (training data is pairs); stopped: epochs done" in result.output
    missing = CliRunner().invoke(main, [str(a) for a in [*common, "-o", tmp_path / "x", "--query-col", "title"]])
    assert missing.exit_code == 2 and "Invalid value for --train" in missing.output
    assert "missing column(s) 'title' named as the pair columns" in missing.output
    assert not (tmp_path / "x").exists()
