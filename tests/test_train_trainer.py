"""Fine-tuning tiny offline CrossEncoders: learning, determinism, outputs, failure safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from builders import tiny_cross_encoder
from click.testing import CliRunner
from safetensors.torch import load_file
from sentence_transformers.cross_encoder import CrossEncoder

from samples.catalogue import listwise_table, pairs_table
from scorer.main import main
from scorer.metrics import classify
from train.config import TrainConfig
from train.data import read_files
from train.evaluate import evaluate, evaluate_checkpoint, predict
from train.trainer import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random BERT and toy catalogue files: 16 lists, 96 pairs (train), 64 pairs (eval)."""
    root = tmp_path_factory.mktemp("train_toy")
    paths = {
        "bert": tiny_cross_encoder("bert", root / "bert"),
        "lists": root / "lists.parquet",
        "pairs": root / "pairs.parquet",
        "eval_pairs": root / "eval_pairs.parquet",
    }
    pq.write_table(listwise_table(16, seed=3), paths["lists"])
    pq.write_table(pairs_table(96, seed=3), paths["pairs"])
    pq.write_table(pairs_table(64, seed=3, split="valid"), paths["eval_pairs"])
    return paths


def _config(base: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {"base_model": str(base), "batch_size": 4, "lr": 1e-3, "max_length": 64, "seed": 7}
    return TrainConfig(**(settings | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def train_lambda_run(train_toy: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """30 LambdaLoss steps on the toy lists, evaluated on the same lists."""
    output = tmp_path_factory.mktemp("lambda") / "checkpoint"
    before = evaluate(CrossEncoder(str(train_toy["bert"])), read_files([train_toy["lists"]]))
    metrics = train(
        [train_toy["lists"]], output, _config(train_toy["bert"], max_steps=30), [train_toy["lists"]], progress=False
    )
    return {"before": before, "metrics": metrics, "output": output}


def test_lambda_training_improves_ranking_on_its_set(train_lambda_run: dict) -> None:
    before = train_lambda_run["before"]["listwise"]
    after = train_lambda_run["metrics"]["eval"]["listwise"]
    assert after["queries"] == before["queries"] == 16
    assert after["ndcg@10"] > before["ndcg@10"] + 0.1
    assert after["map"] > before["map"] + 0.1
    assert after["pairs_ndcg@10"] > before["pairs_ndcg@10"]


def test_training_changes_the_weights(train_lambda_run: dict, train_toy: dict[str, Path]) -> None:
    old = load_file(train_toy["bert"] / "model.safetensors")
    new = load_file(train_lambda_run["output"] / "model.safetensors")
    assert old.keys() == new.keys()
    changed = [k for k in old if not torch.equal(old[k], new[k])]
    assert "classifier.weight" in changed and len(changed) > len(old) // 2


def test_checkpoint_loads_with_sigmoid_scores(train_lambda_run: dict) -> None:
    output = train_lambda_run["output"]
    model = CrossEncoder(str(output))
    assert isinstance(model.activation_fn, torch.nn.Sigmoid)
    settings = json.loads((output / "config_sentence_transformers.json").read_text())
    assert settings["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    scores = model.predict([("DRK CHCLT BAR, COCONUT 3.5OZ", "Nordvik Dark Chocolate Coconut 100 g"), ("a", "b")])
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert not list(output.parent.glob(".checkpoint.*"))  # no staging left beside it


def test_metrics_json_holds_every_figure(train_lambda_run: dict, train_toy: dict[str, Path]) -> None:
    metrics = json.loads((train_lambda_run["output"] / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(train_lambda_run["metrics"]))
    assert metrics["activation"] == "torch.nn.modules.activation.Sigmoid"
    assert metrics["threshold"] == metrics["eval"]["listwise"]["pairs_threshold"]
    assert 0.0 < metrics["threshold"] < 1.0
    assert metrics["threshold_source"] == "tuned for F1 on the listwise eval data"
    assert metrics["config"] | {"base_model": None} == {
        "base_model": None,
        "loss": "lambda",
        "epochs": 1.0,
        "max_steps": 30,
        "batch_size": 4,
        "lr": 1e-3,
        "warmup_ratio": 0.1,
        "max_length": 64,
        "seed": 7,
    }
    assert metrics["train"]["steps"] == 30 and metrics["train"]["rows"] == 16
    assert metrics["train"]["unit"] == "lists" and metrics["train"]["precision"] == "fp32"
    assert metrics["eval_files"] == {"pairs": [], "listwise": [str(train_toy["lists"])]}
    figures = metrics["eval"]["listwise"]
    for name in ("map", "mrr@10", "ndcg@10", "pairs_f1", "pairs_precision", "pairs_recall"):
        assert 0.0 <= figures[name] <= 1.0


def test_model_card(train_lambda_run: dict) -> None:
    card = (train_lambda_run["output"] / "README.md").read_text()
    metrics = train_lambda_run["metrics"]
    assert card.startswith("---\nlibrary_name: sentence-transformers\n")
    assert "`LambdaLoss` with the `NDCGLoss2PPScheme`" in card
    assert f"| ndcg@10 | {metrics['eval']['listwise']['ndcg@10']:.4f} |" in card
    assert f"| decision threshold | {metrics['threshold']:.4f} (tuned for F1" in card
    assert "| learning rate | 0.001 |" in card and "| batch size | 4 (lists per step) |" in card
    assert "## Usage" in card and "CrossEncoder(" in card


def test_same_seed_same_weights(train_toy: dict[str, Path], tmp_path: Path) -> None:
    def weights(name: str, seed: int) -> dict[str, torch.Tensor]:
        config = _config(train_toy["bert"], max_steps=3, seed=seed)
        train([train_toy["lists"]], tmp_path / name, config, progress=False)
        return load_file(tmp_path / name / "model.safetensors")

    first, again, other = weights("a", 1), weights("b", 1), weights("c", 2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_bce_on_pairs_tunes_a_threshold_the_checkpoint_reproduces(train_toy: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "bce"
    config = _config(train_toy["bert"], loss="bce", max_steps=12, batch_size=8)
    metrics = train([train_toy["pairs"]], output, config, [train_toy["eval_pairs"]], progress=False)
    figures = metrics["eval"]["pairs"]
    assert (metrics["train"]["unit"], metrics["train"]["rows"], metrics["train"]["steps"]) == ("pairs", 96, 12)
    assert figures["pairs"] == 64 and figures["threshold"] == metrics["threshold"]
    assert metrics["threshold_source"] == "tuned for F1 on the pairs eval data"
    eval_data = read_files([train_toy["eval_pairs"]])[0].table
    scores = predict(CrossEncoder(str(output)), eval_data)
    again = classify(eval_data["label"].to_numpy() >= 0.5, scores, metrics["threshold"])
    assert again.f1 == pytest.approx(figures["f1"], abs=1e-6)
    assert again.precision == pytest.approx(figures["precision"], abs=1e-6)
    held_back = evaluate_checkpoint(output, [train_toy["eval_pairs"]], metrics["threshold"])
    assert held_back["threshold_source"] == "given"
    assert held_back["pairs"]["f1"] == pytest.approx(figures["f1"], abs=1e-6)
    assert 0.0 <= figures["ndcg@10"] <= 1.0 and figures["f1"] >= figures["f1@0.5"]
    assert "`BinaryCrossEntropyLoss`" in (output / "README.md").read_text()


def test_modernbert_base_trains(tmp_path: Path, train_toy: dict[str, Path]) -> None:
    base = tiny_cross_encoder("modernbert", tmp_path / "modernbert")
    metrics = train([train_toy["lists"]], tmp_path / "out", _config(base, max_steps=3), progress=False)
    assert metrics["train"]["steps"] == 3 and np.isfinite(metrics["train"]["loss"])
    scores = CrossEncoder(str(tmp_path / "out")).predict([("a b c " * 40, "a b d " * 40), ("x", "y")])
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    assert metrics["threshold"] == 0.5 and metrics["threshold_source"] == "default (no eval data)"


def test_failure_keeps_the_earlier_checkpoint_success_replaces_it(
    train_toy: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "ckpt"
    train([train_toy["lists"]], output, _config(train_toy["bert"], max_steps=1), progress=False)
    before = {p.name: p.read_bytes() for p in output.iterdir()}

    def broken(metrics: dict) -> str:
        raise RuntimeError("disk full while writing the card")

    monkeypatch.setattr("train.trainer.render_model_card", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        train([train_toy["lists"]], output, _config(train_toy["bert"], max_steps=1, seed=99), progress=False)
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    monkeypatch.undo()
    train([train_toy["lists"]], output, _config(train_toy["bert"], max_steps=3), progress=False)
    assert (output / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_cli_trains_and_prints_the_figures(train_toy: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "cli"
    args = ["train", "--train", train_toy["pairs"], "--eval", train_toy["eval_pairs"], "-o", output]
    args += ["--base-model", train_toy["bert"], "--loss", "bce", "--max-steps", "2", "--max-length", "64"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert f"threshold: {metrics['threshold']:.4f} (tuned for F1 on the pairs eval data)" in result.output
    assert f"eval pairs: precision {metrics['eval']['pairs']['precision']:.4f}" in result.output
    assert metrics["config"]["max_steps"] == 2 and metrics["config"]["loss"] == "bce"
