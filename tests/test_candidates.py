"""`scorer candidates`: exact pair sets on small constructed catalogues, caps, purges, recall, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import invoke

from scorer.candidates.keys import MAX_BLOCK, key_pairs
from scorer.candidates.lexical import lexical_pairs, max_df, token_counts
from scorer.candidates.neighbours import knn_pairs
from scorer.candidates.text import char_trigrams, keys, product_name, title_tokens, weighted_tokens
from scorer.candidates.trigram import tfidf, trigram_pairs
from scorer.candidates.truth import group_recall

TITLES = [
    "Sony DSC-W310 camera black",
    "sony dscw310 digital camera",
    "Canon EOS 5D Mark II body",
    "canon eos 5d mk2",
    "Apple iPhone 13 128GB",
    "Nikon D3500 kit",
]
COLUMNS = ["query_id", "candidate_id", "query", "candidate", "generators"]


def catalogue(path: Path, titles: list[str], ids: list[object] | None = None) -> Path:
    pq.write_table(
        pa.table({"sku": ids if ids is not None else [f"p{i}" for i in range(len(titles))], "title": titles}), path
    )
    return path


def candidates(*args: object) -> object:
    return invoke("candidates", *args, "--id-col", "sku", "--text-col", "title", "--no-progress")


def pairs(path: Path) -> set[tuple[str, str, str]]:
    rows = pq.read_table(path).to_pylist()
    return {(r["query_id"], r["candidate_id"], r["generators"]) for r in rows}


def test_keys_are_identifiers_not_measurements() -> None:
    assert keys("HP LaserJet P1102w 2.4GHz 1080p 32GB, UPC 884962894248, CE651A") == [
        "p1102w",
        "884962894248",
        "ce651a",
    ]
    assert "a1186001" in title_tokens("Nixon A1186-001")


def test_product_name_drops_language_tags_and_shop_boilerplate() -> None:
    title = 'Nike Tiempo Legacy II FG - Clear Jade"@es-ES " Nike Zapatillas | Shop'
    assert product_name(title) == "nike tiempo legacy ii fg - clear jade"
    tokens = weighted_tokens(title)
    assert tokens.count("tiempo") == 3 and tokens.count("zapatillas") == 1 and "es" not in tokens
    assert len(tokens) == 3 * 7 + 3  # head: nike tiempo legacy ii fg clear jade; tail: nike zapatillas shop
    assert product_name('Classic Watch "Daniel Wellington') == "classic watch"
    assert product_name('"@fr " ') == ""
    assert char_trigrams("ab | wd40") == [" ab", "ab "] * 3 + [" wd", "wd4", "d40", "40 "]


# Two shops list the same five boots; each shop appends its own boilerplate to every title.
MODELS = ["Tiempo Legacy II", "Tiempo Rio III", "Tiempo Legend VI", "Mercurial Victory V", "Hypervenom Phelon II"]
SHOPS = [
    *(f'Nike {m} " Mens Soccer Cleats | Alpha Sports' for m in MODELS),
    *(f'Nike {m} FG "@es " Zapatillas futbol | Beta Tienda' for m in MODELS),
]


def test_head_weighting_and_trigrams_find_the_other_shops_duplicate() -> None:
    every = range(len(SHOPS))

    def found(query: np.ndarray, candidate: np.ndarray) -> int:
        """Records whose top-1 candidate is the same boot in the other shop."""
        return int((np.abs(query - candidate) == len(MODELS)).sum())

    assert found(*lexical_pairs(token_counts(title_tokens(t) for t in SHOPS), every, every, k=1)) == 2
    assert found(*lexical_pairs(token_counts(weighted_tokens(t) for t in SHOPS), every, every, k=1)) == 8
    assert found(*trigram_pairs(token_counts(char_trigrams(t) for t in SHOPS), every, every, k=1)) == 10


def test_trigram_vectors_are_unit_and_frequent_trigrams_purged() -> None:
    weights, df = tfidf(token_counts(char_trigrams(t) for t in SHOPS))
    assert np.allclose(np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel()), 1.0, atol=1e-6)
    assert df.max() == len(SHOPS)  # " ni" (nike) is in every title, under the purge floor of 100
    n = max_df(150) + 50
    query, _ = trigram_pairs(token_counts(char_trigrams(t) for t in ["common"] * n), range(n), range(n), k=3)
    assert len(query) == 0


def test_exact_pairs_and_report(tmp_path: Path) -> None:
    source = catalogue(tmp_path / "cat.parquet", TITLES)
    truth = tmp_path / "truth.parquet"
    pq.write_table(pa.table({"id": ["p0", "p1", "p4", "p5"], "group": [1, 1, 2, 2]}), truth)
    out, report = tmp_path / "pairs.parquet", tmp_path / "report.json"
    result = candidates(
        source, "-o", out, "--k", "1", "--generators", "lexical,keys", "--truth", truth, "--report", report
    )
    assert result.exit_code == 0, result.output
    # p4 and p5 share no token with anyone; p0/p1 also share the key "dscw310"
    assert pairs(out) == {("p0", "p1", "lexical,keys"), ("p2", "p3", "lexical")}
    table = pq.read_table(out)
    assert table.column_names == COLUMNS
    assert table.column("query").to_pylist() == [TITLES[0], TITLES[2]]
    data = json.loads(report.read_text())
    assert data["pairs"] == 2
    assert data["pairs_by_generator"] == {"lexical": 2, "keys": 1}
    assert data["possible_pairs"] == 15
    assert data["reduction_ratio"] == pytest.approx(1 - 2 / 15)
    assert data["true_pairs"] == 2 and data["true_pairs_found"] == 1
    assert data["blocking_recall"] == pytest.approx(0.5)
    assert data["group_recall"] == pytest.approx(0.5)  # p4-p5 has no path
    assert data["recall_by_generator"] == {"lexical": 0.5, "keys": 0.5}
    assert data["estimated_scoring"]["seconds"] is None
    with_rate = tmp_path / "rate.json"
    args = (
        "-o",
        tmp_path / "p2.parquet",
        "--k",
        "1",
        "--generators",
        "lexical",
        "--pairs-per-s",
        "4",
        "--report",
        with_rate,
    )
    assert candidates(source, *args).exit_code == 0
    assert json.loads(with_rate.read_text())["estimated_scoring"]["seconds"] == pytest.approx(0.5)
    out = tmp_path / "tri.parquet"
    assert candidates(source, "-o", out, "--k", "1", "--generators", "trigram").exit_code == 0
    # "sony dscw310 digital camera" shares no word with "Sony DSC-W310 camera black" but most trigrams
    assert ("p0", "p1", "trigram") in pairs(out) and ("p2", "p3", "trigram") in pairs(out)


def test_group_recall_follows_only_true_pairs() -> None:
    n = 5
    key = lambda a, b: a * n + b
    truth = np.array(sorted([key(0, 1), key(0, 2), key(1, 2), key(3, 4)]))
    chain = np.array(sorted([key(0, 1), key(1, 2)]))  # (0, 2) not a candidate, but joined through 1
    assert group_recall(truth, chain, n) == pytest.approx(3 / 4)  # (3, 4) has no path
    through_other = np.array(sorted([key(0, 3), key(3, 2), key(3, 4)]))  # 3 is not in 0's group
    assert group_recall(truth, through_other, n) == pytest.approx(1 / 4)


def test_cap_per_record_and_each_pair_once(tmp_path: Path) -> None:
    n, k = 30, 5
    source = catalogue(tmp_path / "cat.parquet", [f"item widget {i}" for i in range(n)])
    out = tmp_path / "pairs.parquet"
    assert candidates(source, "-o", out, "--k", k, "--generators", "lexical").exit_code == 0
    # every score ties, so each record proposes the k lowest other records
    expected = set()
    for i in range(n):
        for j in [j for j in range(n) if j != i][:k]:
            expected.add((f"p{min(i, j)}", f"p{max(i, j)}", "lexical"))
    found = {(min(a, b, key=lambda s: int(s[1:])), max(a, b, key=lambda s: int(s[1:])), g) for a, b, g in pairs(out)}
    assert found == expected
    assert pq.read_table(out).num_rows == len(expected) == 135


def test_frequent_tokens_and_keys_are_purged() -> None:
    n = max_df(150) + 50
    counts = token_counts(["common"] * n)
    query, _ = lexical_pairs(counts, range(n), range(n), k=3)
    assert len(query) == 0
    query, _ = key_pairs([["abc1234"]] * (MAX_BLOCK + 1), k=3)
    assert len(query) == 0
    query, _ = key_pairs([["abc1234"]] * MAX_BLOCK, k=3)
    assert len(query) == 3 * MAX_BLOCK and set(np.bincount(query)) == {3}


def test_link_mode_pairs_across_catalogues_only(tmp_path: Path) -> None:
    left = catalogue(tmp_path / "left.parquet", TITLES[:3], ["a0", "a1", "a2"])
    right = catalogue(tmp_path / "right.parquet", TITLES[3:] + ["SONY DSC W310"], ["b0", "b1", "b2", "b3"])
    out, report = tmp_path / "pairs.parquet", tmp_path / "r.json"
    result = candidates(
        left, "--against", right, "-o", out, "--k", "2", "--generators", "lexical,keys", "--report", report
    )
    assert result.exit_code == 0, result.output
    assert {(a, b) for a, b, _ in pairs(out)} == {("a0", "b3"), ("a1", "b3"), ("a2", "b0")}
    data = json.loads(report.read_text())
    assert (data["mode"], data["left_records"], data["possible_pairs"]) == ("link", 3, 12)


def test_knn_pairs_exact_on_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16))
    vectors = np.repeat(centres, 3, axis=0) + rng.normal(scale=0.01, size=(30, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    query, candidate = knn_pairs(vectors, 0, vectors, 0, k=2)
    assert len(query) == 60 and not np.any(query == candidate)
    assert np.all(query // 3 == candidate // 3)  # the two neighbours are the other members of the cluster


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"sku": ["a", "b"], "name": ["x", "y"]}), "column 'title' not found"),
        (pa.table({"sku": ["a", None], "title": ["x", "y"]}), "column 'sku', row 1: null value"),
        (pa.table({"sku": ["a", "b"], "title": ["x", None]}), "column 'title', row 1: null value"),
        (pa.table({"sku": [1.5, 2.5], "title": ["x", "y"]}), "column 'sku' has type double"),
        (pa.table({"sku": ["a", "a"], "title": ["x", "y"]}), "column 'sku', row 1: duplicate id 'a'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, table: pa.Table, message: str) -> None:
    source = tmp_path / "cat.parquet"
    pq.write_table(table, source)
    out = tmp_path / "pairs.parquet"
    result = candidates(source, "-o", out, "--generators", "lexical,keys")
    assert result.exit_code == 2
    assert str(source) in result.output and message in result.output
    assert not out.exists()


def test_duplicate_id_across_files_and_output_over_input(tmp_path: Path) -> None:
    first = catalogue(tmp_path / "a.parquet", ["x", "y"], ["a", "b"])
    second = catalogue(tmp_path / "b.parquet", ["z"], ["b"])
    result = candidates(first, second, "-o", tmp_path / "out.parquet")
    assert (
        result.exit_code == 2
        and f"{second}: column 'sku', row 0: duplicate id 'b' (also {first}, row 1)" in result.output
    )
    result = candidates(first, "-o", first, "--generators", "lexical")
    assert result.exit_code == 2 and "which this command reads" in result.output
    assert pq.read_table(first).num_rows == 2


def test_empty_catalogue_gives_empty_output_with_schema(tmp_path: Path) -> None:
    source = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"sku": pa.array([], pa.int64()), "title": pa.array([], pa.string())}), source)
    out = tmp_path / "pairs.parquet"
    assert candidates(source, "-o", out).exit_code == 0  # embedding requested: nothing to embed, no model loaded
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names == COLUMNS
    assert table.schema.field("query_id").type == pa.int64()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT encoder (MiniLM's tokenizer) saved as a transformers directory."""
    import torch
    from builders import MINILM, TINY
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **TINY)).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_embedder(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """That encoder exported with the same code as the default embedder."""
    from export.embedder import export_embedder

    return export_embedder(tiny_base, tmp_path_factory.mktemp("embedder") / "onnx")


@pytest.fixture(scope="module")
def cls_model(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers model over the tiny encoder with CLS pooling (as BGE-style embedders use)."""
    from sentence_transformers import SentenceTransformer, models

    word = models.Transformer(str(tiny_base), max_seq_length=64)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="cls")
    path = tmp_path_factory.mktemp("st") / "cls-model"
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(path))
    return path


def test_embedder_of_a_cls_model_matches_sentence_transformers(cls_model: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from export.embedder import export_embedder
    from scorer.candidates.embedder import Embedder

    directory = export_embedder(cls_model, tmp_path / "onnx", quantize=False)
    embedder = Embedder(directory, 1)
    assert embedder.pooling == "cls" and embedder.manifest["base_model"] == str(cls_model.resolve())
    texts = ["red phone case", "Blue USB-C cable 2m", "x"]
    ours, _ = embedder.encode(texts)
    reference = SentenceTransformer(str(cls_model), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.abs(ours - reference).max() < 1e-5


def test_embedder_model_option_exports_once_and_checks_the_directory(
    cls_model: Path, tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORER_CACHE_DIR", str(tmp_path / "cache"))
    source = catalogue(tmp_path / "cat.parquet", [f"{w} phone case {i}" for i, w in enumerate(["red", "blue"] * 3)])
    args = ("--generators", "embedding", "--k", "2")
    result = candidates(source, "-o", tmp_path / "a.parquet", "--embedder-model", cls_model, *args)
    assert result.exit_code == 0, result.output
    (exported,) = (tmp_path / "cache" / "product-scorer" / "embedders").iterdir()
    assert json.loads((exported / "embedder.json").read_text())["pooling"] == "cls"
    assert pq.read_table(tmp_path / "a.parquet").num_rows >= 6  # 2 neighbours of each of 6 records
    other = candidates(
        source, "-o", tmp_path / "b.parquet", "--embedder", exported, "--embedder-model", tiny_base, *args
    )
    assert other.exit_code == 2 and "holds an embedder of" in other.output
    assert not (tmp_path / "b.parquet").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = candidates(source, "-o", tmp_path / "c.parquet", "--embedder-model", "no-such/model", *args)
    assert missing.exit_code == 2 and "no-such/model" in missing.output
    assert not (tmp_path / "c.parquet").exists()


def test_embedding_generator_without_torch(tmp_path: Path, tiny_embedder: Path) -> None:
    titles = [f"{word} phone case {i}" for i, word in enumerate(["red", "blue", "green"] * 4)]
    source = catalogue(tmp_path / "cat.parquet", titles)
    out, report = tmp_path / "pairs.parquet", tmp_path / "r.json"
    code = (
        "import sys\nfrom scorer.main import main\n"
        f"try:\n    main({['candidates', str(source), '-o', str(out), '--id-col', 'sku', '--text-col', 'title', '--k', '2', '--generators', 'embedding', '--embedder', str(tiny_embedder), '--report', str(report)]!r})\n"
        "except SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert set(table.column("generators").to_pylist()) == {"embedding"}
    assert 12 <= table.num_rows <= 24  # 2 neighbours per record, each unordered pair once
    data = json.loads(report.read_text())
    assert data["pairs_by_generator"] == {"embedding": table.num_rows}
    assert data["estimated_scoring"]["pairs_per_s"] > 0


def test_token_lengths_and_scoring_estimate_read_in_windows(
    tiny_embedder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scorer.candidates import embedder as embedder_module
    from scorer.candidates import report
    from scorer.candidates.blocking import Blocking
    from scorer.candidates.embedder import Embedder, EncodeStats

    model = Embedder(tiny_embedder)
    texts = [" ".join(["word"] * count) for count in range(1, 12)]
    monkeypatch.setattr(embedder_module, "WINDOW", 4)  # 11 texts: windows of 4, 4, 3
    lengths = model.token_lengths(texts)
    assert lengths.tolist() == [count + 2 for count in range(1, 12)]  # [CLS] word x count [SEP]
    monkeypatch.setattr(report, "CHUNK", 2)  # 3 pairs: chunks of 2, 1
    n = len(texts)
    keys = np.array([0 * n + 1, 2 * n + 5, 3 * n + 10])  # tokens per pair (both texts, one [CLS]): 6, 12, 18
    blocking = Blocking(keys, np.ones(3, dtype=np.int8), encode_stats=EncodeStats(1200, 1.0), token_lengths=lengths)
    assert report.scoring_estimate(blocking, None)["pairs_per_s"] == 100.0  # 1200 tokens/s / 12 tokens per pair


def test_an_embedder_is_loaded_only_as_exported(tiny_embedder: Path, tmp_path: Path) -> None:
    import shutil

    from scorer.candidates.embedder import MANIFEST, MODEL_FILE, Embedder
    from scorer.errors import InputError

    swapped = tmp_path / "swapped"
    shutil.copytree(tiny_embedder, swapped)
    (swapped / MODEL_FILE).write_bytes((swapped / MODEL_FILE).read_bytes() + b"\0")  # another model's bytes
    with pytest.raises(InputError, match=r"model.onnx: not the model embedder.json records \(its sha256 differs\)"):
        Embedder(swapped)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_embedder, broken)
    (broken / MANIFEST).write_text('{"pooling": "mean", ')
    with pytest.raises(InputError, match=r"embedder.json: not valid JSON"):
        Embedder(broken)
    (broken / MANIFEST).write_text(json.dumps({"sha256": "0" * 64, "max_length": "64"}))
    with pytest.raises(InputError, match=r"max_length must be an integer in 2..65536, not '64'"):
        Embedder(broken)
    assert Embedder(tiny_embedder).dim > 0


def test_key_blocks_expanded_in_chunks_give_the_same_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from scorer.candidates import keys

    rng = np.random.default_rng(4)
    lists = [[f"c{code}" for code in rng.choice(60, size=rng.integers(1, 6), replace=False)] for _ in range(400)]
    whole = keys.key_pairs(lists, 5, split=150)
    monkeypatch.setattr(keys, "PAIRS_PER_CHUNK", 50)  # dozens of chunks, block sizes tied across them
    assert len(keys._chunks(np.bincount([int(c[1:]) for codes in lists for c in codes]))) > 20
    chunked = keys.key_pairs(lists, 5, split=150)
    assert len(whole[0]) > 1000
    assert np.array_equal(whole[0], chunked[0]) and np.array_equal(whole[1], chunked[1])


def test_blank_titles_are_never_proposed_and_a_foreign_truth_exits_2(tmp_path: Path) -> None:
    titles = ["", "   ", "sony tv kdl40", "sony tv kdl40 black", ""]
    path = catalogue(tmp_path / "c.parquet", titles)
    out, report = tmp_path / "pairs.parquet", tmp_path / "report.json"
    result = candidates(path, "-o", out, "--generators", "lexical,keys,trigram", "--report", report)
    assert result.exit_code == 0, result.output
    assert {pair[:2] for pair in pairs(out)} == {("p2", "p3")}  # the blank titles paired with nothing
    assert json.loads(report.read_text())["blank_records"] == 3
    truth = tmp_path / "truth.parquet"
    pq.write_table(pa.table({"id": [7, 8], "group": [1, 1]}), truth)
    foreign = candidates(path, "-o", out, "--generators", "lexical", "--truth", truth)
    assert foreign.exit_code == 2 and "none of its 2 ids is in the catalogue (its ids are int64" in foreign.output
