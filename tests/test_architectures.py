"""export.architectures: one complete entry per model_type, read by the export steps and benchmarks.flops."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from benchmarks import flops, mmbert_arch
from export.architectures import ARCHITECTURES, architecture, keeps_fp32, layer_index
from scorer.errors import InputError

SUPPORTED = ["bert", "distilbert", "electra", "modernbert", "roberta", "xlm-roberta"]
MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
MMBERT = {"model_type": "modernbert", **mmbert_arch.MMBERT_SMALL}


def test_every_entry_is_complete() -> None:
    assert sorted(ARCHITECTURES) == SUPPORTED
    optional = {"fusion", "fp32_op_types", "sliding_window", "config_kwargs"}  # may be None or empty
    for model_type, entry in ARCHITECTURES.items():
        assert entry.model_type == model_type
        for spec in dataclasses.fields(entry):
            value = getattr(entry, spec.name)
            assert spec.name in optional or value, (model_type, spec.name)
        assert entry.fusion in ("bert", None)
        assert "/classifier/" in entry.fp32_name_fragments
        assert re.compile(entry.layer_pattern).groups == 1
        assert all(isinstance(c, int) and c > 0 for c in entry.linear_weights) and len(entry.linear_weights) == 2
        assert dict(entry.model_kwargs) == {"attn_implementation": "sdpa"}
        assert all(dataclasses.astuple(entry.config_keys))
    assert dict(architecture("modernbert").config_kwargs) == {"reference_compile": False}
    assert [t for t, e in ARCHITECTURES.items() if e.fusion is None] == ["modernbert"]
    assert [t for t, e in ARCHITECTURES.items() if e.sliding_window] == ["modernbert"]


def test_unknown_model_type_names_the_supported_ones() -> None:
    with pytest.raises(
        ValueError,
        match="ckpt/config.json: model_type 'deberta-v2' is not supported; supported: " + ", ".join(SUPPORTED),
    ) as raised:
        architecture("deberta-v2", "ckpt/config.json")
    assert isinstance(raised.value, InputError) and raised.value.exit_code == 2
    with pytest.raises(ValueError, match="'gpt2' is not supported"):
        flops.pair_flops({**MINILM, "model_type": "gpt2"}, 36)


def test_flops_of_minilm_and_mmbert_small() -> None:
    assert flops.pair_flops(MINILM, 36) == 776_651_520  # 0.777 GFLOP, the figure of benchmarks/flops.py
    # BRIEF: "about 3.0 GFLOP/pair at 36 tokens"; 8 global layers of 22 (every third) at 300 tokens
    assert flops.linear_params_per_layer(MMBERT) == 4 * 384**2 + 3 * 384 * 1152 == 1_916_928
    assert flops.pair_flops(MMBERT, 36) == 3_080_504_064
    assert flops.attention_spans(MMBERT, 300) == [300 if layer % 3 == 0 else 128 for layer in range(22)]
    # DistilBERT names its dimensions dim / hidden_dim / n_layers; same formula as BERT
    distil = {"model_type": "distilbert", "dim": 384, "hidden_dim": 1536, "n_layers": 6}
    assert flops.pair_flops(distil, 36) == flops.pair_flops({**MINILM, "model_type": "roberta"}, 36) == 776_651_520


@pytest.mark.parametrize(
    ("name", "model_type", "layer"),
    [
        ("/bert/encoder/layer.3/attention/self/query/MatMul", "bert", 3),
        ("/roberta/encoder/layer.11/output/dense/MatMul", "xlm-roberta", 11),
        ("/distilbert/transformer/layer.5/ffn/lin2/MatMul", "distilbert", 5),
        ("/model/layers.3/attn/Wqkv/MatMul", "modernbert", 3),
        ("/model/layers.21/mlp/Wo/MatMul", "modernbert", 21),
    ],
)
def test_layer_pattern_finds_the_layer_index(name: str, model_type: str, layer: int) -> None:
    assert architecture(model_type).layer_index(name) == layer
    assert layer_index(name) == layer  # any supported architecture's pattern, as the export uses
    other = "modernbert" if model_type != "modernbert" else "bert"
    assert architecture(other).layer_index(name) is None


@pytest.mark.parametrize(
    "name", ["/bert/embeddings/word_embeddings/Gather", "/classifier/MatMul", "/model/final_norm/LayerNormalization"]
)
def test_nodes_outside_the_encoder_layers_have_no_index(name: str) -> None:
    assert layer_index(name) is None


def test_fp16_keeps_rope_and_head_in_fp32() -> None:
    bert, modernbert = architecture("bert"), architecture("modernbert")
    assert bert.keeps_fp32("/bert/pooler/dense/MatMul", "MatMul")
    assert not bert.keeps_fp32("/bert/encoder/layer.0/attention/self/query/MatMul", "MatMul")
    assert modernbert.keeps_fp32("/model/layers.0/attn/rotary_emb/Mul", "Mul")
    assert modernbert.keeps_fp32("/model/layers.0/attn/Sin", "Sin")
    assert modernbert.keeps_fp32("/head/dense/MatMul", "MatMul")
    assert not modernbert.keeps_fp32("/model/layers.0/mlp/Wi/MatMul", "MatMul")
    assert keeps_fp32("/model/layers.0/attn/Cos", "Cos") and keeps_fp32("/bert/pooler/dense/MatMul", "MatMul")


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_own_rules_select_the_nodes_the_export_selected(kind: str, request: pytest.FixtureRequest) -> None:
    """On the exported tiny graphs, each architecture's own rules pick exactly what the any-architecture
    rules (the export's) picked: the same layers, the same fp32 nodes as the fp16 recipe records."""
    _, artifact = request.getfixturevalue(kind)
    entry = architecture(kind)
    nodes = onnx.load(str(artifact / "model.fp32.onnx"), load_external_data=False).graph.node
    assert [entry.layer_index(n.name) for n in nodes] == [layer_index(n.name) for n in nodes]
    assert {entry.layer_index(n.name) for n in nodes} - {None} == {0, 1}
    kept = [n.name for n in nodes if entry.keeps_fp32(n.name, n.op_type)]
    assert kept == [n.name for n in nodes if keeps_fp32(n.name, n.op_type)]
    recipe = json.loads((artifact / "manifest.json").read_text())["variants"]["fp16"]["recipe"]
    assert len(kept) == recipe["nodes_kept_fp32"] > 0


def test_flops_imports_no_torch_stack() -> None:
    heavy = ["torch", "transformers", "onnxruntime", "onnx", "sentence_transformers"]
    code = f"import sys, benchmarks.flops; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
