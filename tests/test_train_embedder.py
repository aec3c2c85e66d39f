"""`scorer train-embedder`: training pulls positive pairs together, its output feeds `scorer candidates`, and
bad input exits 2 naming file and column, leaving nothing at the output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from builders import MINILM, TINY
from click.testing import CliRunner, Result
from sentence_transformers import SentenceTransformer, models
from transformers import AutoTokenizer, BertConfig, BertModel

from scorer.main import main
from train.embedder.data import product_groups
from train.embedder.sampler import GroupFreeBatches
from train.embedder.trainer import MARKER

BRANDS = ["nikon", "canon", "sony", "casio", "seiko", "asics", "puma", "dell", "lenovo", "garmin", "fuji", "omega"]
PAIRS = [(f"{b} model {i}{b[:2]} black", f"{b.upper()} {i}{b[:2]}-BLK camera body") for i, b in enumerate(BRANDS)]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["train-embedder", *map(str, args)])


def write_pairs(path: Path, pairs: list[tuple[str | None, str | None]], labels: list[int] | None = None) -> Path:
    labels = labels if labels is not None else [1] * len(pairs)
    table = pa.table(
        {"query": [a for a, _ in pairs], "candidate": [b for _, b in pairs], "label": pa.array(labels, pa.int8())}
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT sentence-transformers model (mean pooling, normalised) with the MiniLM tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-embedder")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    encoder = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=128, **TINY))
    encoder.save_pretrained(directory / "hf")
    tokenizer.save_pretrained(directory / "hf")
    transformer = models.Transformer(str(directory / "hf"), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(directory / "st"))
    return directory / "st"


def margin(model_dir: Path) -> float:
    """Mean cosine of the positive pairs minus mean cosine of the mismatched ones."""
    model = SentenceTransformer(str(model_dir), device="cpu")
    a = model.encode([a for a, _ in PAIRS], normalize_embeddings=True)
    b = model.encode([b for _, b in PAIRS], normalize_embeddings=True)
    cosines = a @ b.T
    positive = float(np.mean(np.diag(cosines)))
    negative = float((cosines.sum() - np.trace(cosines)) / (len(PAIRS) * (len(PAIRS) - 1)))
    return positive - negative


@pytest.fixture(scope="module")
def trained(tiny_embedder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    data = write_pairs(root / "pairs.parquet", [*PAIRS, ("a", "b")], [1] * len(PAIRS) + [0])
    result = run(
        "--train", data, "-o", root / "model", "--base-model", tiny_embedder,
        "--epochs", "15", "--batch-size", "4", "--lr", "1e-3", "--text", "raw", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "model"


def test_training_pulls_positive_pairs_together(tiny_embedder: Path, trained: Path) -> None:
    before, after = margin(tiny_embedder), margin(trained)
    assert after > before + 0.2, (before, after)
    record = json.loads((trained / MARKER).read_text())
    assert record["pairs"] == len(PAIRS)  # the label-0 pair is left out
    assert record["steps"] == 15 * 3  # 12 pairs of 12 products, 4 a batch
    assert not [p.name for p in trained.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_candidates_embeds_with_the_trained_model(trained: Path, tmp_path: Path) -> None:
    titles = [t for pair in PAIRS for t in pair]
    catalogue = tmp_path / "catalogue.parquet"
    pq.write_table(pa.table({"id": list(range(len(titles))), "title": titles}), catalogue)
    result = CliRunner().invoke(
        main,
        [
            "candidates", str(catalogue), "-o", str(tmp_path / "pairs.parquet"), "--id-col", "id",
            "--text-col", "title", "--k", "1", "--generators", "embedding", "--embedder-model", str(trained),
            "--embedder", str(tmp_path / "onnx"), "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = pq.read_table(tmp_path / "pairs.parquet").to_pydict()
    pairs = {frozenset(p) for p in zip(found["query_id"], found["candidate_id"], strict=True)}
    true = sum(frozenset((2 * i, 2 * i + 1)) in pairs for i in range(len(PAIRS)))
    assert true >= len(PAIRS) - 2  # each record's nearest neighbour is its own product's other title


def test_batches_never_hold_two_pairs_of_one_product() -> None:
    pairs = [("a", "b"), ("b", "c"), ("c", "d"), ("x", "y"), ("p", "q"), ("q", "r"), ("m", "n")]
    groups = product_groups(pairs)
    assert groups == [0, 0, 0, 1, 2, 2, 3]
    batches = list(GroupFreeBatches(groups, batch_size=3, seed=1))
    assert sorted(i for batch in batches for i in batch) == list(range(len(pairs)))
    assert all(len({groups[i] for i in batch}) == len(batch) <= 3 for batch in batches)


def test_missing_column_exits_2_naming_file_and_column(tiny_embedder: Path, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", PAIRS)
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tiny_embedder, "--query-col", "title")
    assert result.exit_code == 2
    assert "Invalid value for --train" in result.output
    assert f"{data}: column 'title': no such column" in result.output
    assert not (tmp_path / "out").exists()


def test_null_text_exits_2_naming_file_column_and_row(tiny_embedder: Path, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", [*PAIRS[:3], (PAIRS[3][0], None)])
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tiny_embedder)
    assert result.exit_code == 2
    assert f"{data}: row 4, column 'candidate': null value" in result.output
    assert not (tmp_path / "out").exists()


def test_no_positive_pairs_exits_2(tiny_embedder: Path, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", PAIRS[:4], [0, 0, 0, 0])
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tiny_embedder)
    assert result.exit_code == 2
    assert f"{data}: column 'label': no positive pairs" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_file_and_foreign_output_exit_2(tiny_embedder: Path, tmp_path: Path) -> None:
    result = run("--train", tmp_path / "absent.parquet", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "does not exist" in result.output
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    data = write_pairs(tmp_path / "pairs.parquet", PAIRS)
    result = run("--train", data, "-o", taken, "--base-model", tiny_embedder)
    assert result.exit_code == 2
    assert "Invalid value for -o/--output" in result.output and f"no {MARKER}" in result.output
    assert (taken / "notes.txt").read_text() == "mine"


def test_unloadable_base_model_exits_2(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.parquet", PAIRS)
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tmp_path / "no-model")
    assert result.exit_code == 2
    assert "Invalid value for --base-model" in result.output and "cannot load base model" in result.output
    assert not (tmp_path / "out").exists()


def test_failed_training_leaves_nothing_at_the_output(
    tiny_embedder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformerTrainer

    def crash(self: object, *args: object, **kwargs: object) -> None:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(SentenceTransformerTrainer, "train", crash)
    data = write_pairs(tmp_path / "pairs.parquet", PAIRS)
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tiny_embedder, "--no-progress")
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.parquet"]


def test_pairs_of_one_product_exit_2(tiny_embedder: Path, tmp_path: Path) -> None:
    one = [("sony kdl-46v5100", "Sony Bravia 46in KDL46V5100"), ("sony kdl-46v5100", "SONY KDL 46 V5100 LCD")]
    data = write_pairs(tmp_path / "pairs.parquet", one, [1, 1])
    result = run("--train", data, "-o", tmp_path / "out", "--base-model", tiny_embedder)
    assert result.exit_code == 2 and "every positive pair is of one product" in result.output
    assert not (tmp_path / "out").exists()
