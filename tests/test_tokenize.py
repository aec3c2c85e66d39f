"""Pair tokenization (`scorer.tokenize`) of long texts: the reference tokenizer's ids, memory linear in max_length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scorer.model import LoadedModel


def _long_texts(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [
        "chocolate",
        "70%",
        "cacao",
        "DRK",
        "CHCLT",
        "bar,",
        "coconut",
        "ÉCLAIR",
        "巧克力",
        "x" * 150,
        "  ",
        "GTIN",
    ]
    return [
        " ".join(rng.choice(words, size=int(n))) + suffix
        for n, suffix in ((3000, ""), (400, " tail"), (2500, "!"), (5000, "日本語テキスト"))
    ]


def test_long_texts_tokenize_exactly_like_the_reference_tokenizer(bert: tuple[Path, Path]) -> None:
    """Token ids equal the Hugging Face tokenizer's (what CrossEncoder.predict feeds the model)."""
    from transformers import AutoTokenizer

    model = LoadedModel.load(bert[1], "fp32")
    reference = AutoTokenizer.from_pretrained(str(bert[0]))
    texts = _long_texts(0) + ["short title", ""]
    queries = [q for q in texts for _ in texts]
    candidates = [c for _ in texts for c in texts]
    encoded = model.tokenizer.encode(queries, candidates)
    expected = reference(queries, candidates, truncation="longest_first", max_length=model.manifest.max_length)
    assert [ids.tolist() for ids in encoded.ids] == expected["input_ids"]
    assert [ids.tolist() for ids in encoded.type_ids] == expected["token_type_ids"]
    full = reference(queries, candidates)["input_ids"]
    assert encoded.truncated == sum(len(ids) > model.manifest.max_length for ids in full) > 0


def test_megabyte_texts_score_like_predict_in_bounded_memory(bert: tuple[Path, Path], tmp_path: Path) -> None:
    """Ten rows of a 1 MB and a 512 KB text: peak RSS stays far below the tokenizer's quadratic overflow
    (22 GB and more), and the scores equal CrossEncoder.predict, computed where predict can afford it."""
    from export.reference import load_cross_encoder, reference_scores

    megabyte = [(" ".join(_long_texts(i)) * 40)[: 1 << 20] for i in range(10)]
    halves = [text[: 1 << 19] for text in megabyte[::-1]]
    source, output = tmp_path / "huge.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.table({"query": megabyte, "candidate": halves}), source)
    command = [sys.executable, "-m", "scorer", "run", str(source), "-m", str(bert[1]), "-o", str(output)]
    command += ["--precision", "fp32"]
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
    assert int(done.stdout) < 1_200_000, done.stdout  # KB; the tokenizer's overflow alone needed > 22 GB
    scores = pq.read_table(output)["score"].to_numpy()
    # Longest-first keeps the same tokens of prefixes that hold far more than max_length tokens and keep the
    # query the longer text, so predict on those prefixes is the reference (on the whole texts it cannot run).
    model = load_cross_encoder(bert[0])
    expected = reference_scores(model, [q[:40000] for q in megabyte[:3]], [c[:20000] for c in halves[:3]])
    assert np.allclose(scores[:3], expected, atol=1e-5)
    short = ["dark chocolate coconut bar"] * 2  # (1 MB, short): linear for predict too
    fp32 = LoadedModel.load(bert[1], "fp32")
    assert np.allclose(fp32.score(megabyte[:2], short), reference_scores(model, megabyte[:2], short), atol=1e-5)
