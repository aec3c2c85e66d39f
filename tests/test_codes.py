"""Product codes with and without hyphens (`train.codes`): one tokenization, carried from training to `scorer run`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from builders import MINILM, tiny_cross_encoder
from conftest import LOOSE_GATES, invoke
from sentence_transformers import CrossEncoder
from tokenizers import Tokenizer

from samples.catalogue import pairs_table
from train.codes import join_codes, joins_codes
from train.config import RunOptions, TrainConfig
from train.trainer import train

# Each row: the same pair spelled with and without the hyphens inside its codes.
SPELLINGS = [
    (
        "sony cyber-shot dsc-w170 silver",
        "sony dsc-w170 digital camera",
        "sony cyber-shot dscw170 silver",
        "sony dscw170 digital camera",
    ),
    (
        "belkin cushtop f8n044-slv",
        "Belkin F8N044-SLV laptop stand",
        "belkin cushtop f8n044slv",
        "Belkin F8N044SLV laptop stand",
    ),
    (
        "samsung ht-z510 home theater",
        "samsung 5 disc system htz510",
        "samsung htz510 home theater",
        "samsung 5 disc system htz510",
    ),
]


def test_the_rule_joins_hyphenated_codes_and_keeps_other_hyphens() -> None:
    tokenizer = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    assert not joins_codes(tokenizer)
    plain = tokenizer.encode("Sony DSC-W170").ids
    assert join_codes(tokenizer) and joins_codes(tokenizer)
    assert not join_codes(tokenizer)  # once is enough: a second call leaves the normalizer as it is
    assert tokenizer.encode("Sony DSC-W170").ids == tokenizer.encode("sony dscw170").ids != plain
    for kept in ("cyber-shot", "wi-fi", "am/fm", "a - 1", "-5", "dvpfx820 / r"):
        assert tokenizer.normalizer.normalize_str(kept) == kept
    for code, joined in [
        ("f8n044-slv", "f8n044slv"),
        ("ht-z510", "htz510"),
        ("18-55mm", "1855mm"),
        ("8223-ip2", "8223ip2"),
    ]:
        assert tokenizer.normalizer.normalize_str(code) == joined


def test_a_checkpoint_trained_to_join_codes_scores_both_spellings_alike_in_torch_and_scorer_run(
    tmp_path: Path, calibration_file: Path, one_torch_thread: None
) -> None:
    data = tmp_path / "pairs.parquet"
    pq.write_table(pairs_table(64, seed=3), data)
    config = TrainConfig(base_model=str(tiny_cross_encoder("bert", tmp_path / "bert")), batch_size=16, max_steps=1)
    plain = train([data], tmp_path / "plain", config, progress=False, options=RunOptions(bf16=False))
    metrics = train([data], tmp_path / "ckpt", config, progress=False, options=RunOptions(bf16=False, join_codes=True))
    assert (plain["codes_joined"], metrics["codes_joined"]) == (False, True)
    assert "hyphens inside codes dropped" in (tmp_path / "ckpt" / "README.md").read_text()
    then = dataclasses.replace(config, base_model=str(tmp_path / "ckpt"))  # intermediate training keeps the rule
    assert train([data], tmp_path / "then", then, progress=False, options=RunOptions(bf16=False))["codes_joined"]

    hyphens = [(q, c) for q, c, _, _ in SPELLINGS]
    joined = [(q, c) for _, _, q, c in SPELLINGS]
    torch_scores = CrossEncoder(str(tmp_path / "ckpt")).predict(hyphens + joined)
    assert abs(torch_scores[:3] - torch_scores[3:]).max() < 1e-6  # same tokens, batch-position float noise only
    saved = {name: Tokenizer.from_file(str(tmp_path / name / "tokenizer.json")) for name in ("plain", "ckpt")}
    assert not joins_codes(saved["plain"]) and joins_codes(saved["ckpt"])

    artifact = tmp_path / "artifact"
    result = invoke("export", tmp_path / "ckpt", "-o", artifact, "--calibration", calibration_file, *LOOSE_GATES)
    assert result.exit_code == 0, result.output
    pairs = tmp_path / "input.parquet"
    pq.write_table(
        pa.table({"query": [q for q, _ in hyphens + joined], "candidate": [c for _, c in hyphens + joined]}), pairs
    )
    result = invoke("run", pairs, "-m", artifact, "-o", tmp_path / "scores.parquet", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    scores = pq.read_table(tmp_path / "scores.parquet")["score"].to_numpy()
    assert list(scores[:3]) == list(scores[3:])
    assert abs(scores - torch_scores).max() < 1e-5


def test_scorer_train_join_codes_flag_reaches_the_checkpoint(tmp_path: Path, one_torch_thread: None) -> None:
    data = tmp_path / "pairs.parquet"
    pq.write_table(pairs_table(32, seed=4), data)
    base = tiny_cross_encoder("bert", tmp_path / "bert")
    args = ["train", "--train", data, "--base-model", base, "-o", tmp_path / "ckpt", "--max-steps", "1", "--no-bf16"]
    result = invoke(*args, "--join-codes")
    assert result.exit_code == 0, result.output
    assert joins_codes(Tokenizer.from_file(str(tmp_path / "ckpt" / "tokenizer.json")))
