"""SmoothQuant smoothing: an equal fp32 graph, only LayerNorm -> MatMul pairs touched, fewer int8 errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from builders import tiny_cross_encoder
from onnx import helper, numpy_helper

from export.onnx_graph import export_raw
from export.quantize import Int8Recipe, quantize_int8
from export.smoothquant import activation_ranges, smooth, smooth_model, smoothing_sites
from scorer.metrics import parity

OUTLIER_CHANNEL, OUTLIER_GAIN = 5, 40.0


def _feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Batches of random token ids with right padding (lengths 6-40), as `scorer run` pads them."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        lengths = rng.integers(6, 41, 16)
        ids = rng.integers(1000, 20000, (16, lengths.max()))
        mask = (np.arange(lengths.max()) < lengths[:, None]).astype(np.int64)
        batches.append({"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    return batches


def _scores(path: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    logits = [session.run(None, {n: feed[n] for n in names})[0][:, 0] for feed in feeds]
    return 1.0 / (1.0 + np.exp(-np.concatenate(logits)))


@pytest.fixture(scope="module")
def raw_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unfused fp32 graph of a tiny random BERT (2 layers, hidden 32)."""
    root = tmp_path_factory.mktemp("smoothquant")
    return export_raw(tiny_cross_encoder("bert", root / "checkpoint"), root)


@pytest.fixture(scope="module")
def outlier_bert(raw_bert: Path) -> Path:
    """The tiny BERT made to look trained: channel 5 of every LayerNorm output that feeds a MatMul 40x
    larger (the weight rows reading it 40x smaller, a Mul restores the residual), and the attention-out,
    FFN-out and classifier weights 10x larger, so that the sublayers, not the embeddings, set the score."""
    model = onnx.load(str(raw_bert))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes = graph.node
    hidden = graph.initializer[0].dims[1]  # the token embedding table
    gain = np.ones(hidden, np.float32)
    gain[OUTLIER_CHANNEL] = OUTLIER_GAIN
    restores = {}
    for index, site in enumerate(smoothing_sites(model)):
        norm = nodes[site.norm]
        # untrained gammas are all 1 and betas 0 (shared through Identity): give each its own
        beta = np.random.default_rng(index).normal(0, 0.1, hidden).astype(np.float32)
        del norm.input[1:]
        norm.input.extend([f"gamma{index}", f"beta{index}"])
        graph.initializer.extend(
            [numpy_helper.from_array(gain, f"gamma{index}"), numpy_helper.from_array(beta * gain, f"beta{index}")]
        )
        for position in site.matmuls:
            weight = initializers[nodes[position].input[1]]
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) / gain[:, None], weight.name))
        graph.initializer.append(numpy_helper.from_array(1 / gain, f"restore{index}"))
        restores[site.norm] = helper.make_node("Mul", [site.output, f"restore{index}"], [f"restored{index}"])
        for position in site.residual:
            nodes[position].input[list(nodes[position].input).index(site.output)] = f"restored{index}"
    smoothed = {nodes[position].input[1] for site in smoothing_sites(model) for position in site.matmuls}
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and node.input[1] in initializers and node.input[1] not in smoothed:
            weight = initializers[node.input[1]]
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 10, weight.name))
    ordered = [n for i, node in enumerate(graph.node) for n in (node, restores.get(i)) if n is not None]
    del graph.node[:]
    graph.node.extend(ordered)
    path = raw_bert.with_name("outlier.onnx")
    onnx.save(model, str(path))
    return path


def test_smoothed_fp32_graph_scores_equal_the_original(outlier_bert: Path, tmp_path: Path) -> None:
    feeds = _feeds(6, seed=0)
    smoothed = tmp_path / "smoothed.onnx"
    assert smooth(outlier_bert, smoothed, feeds[:3], alpha=0.5) == 4  # 2 layers x (Q/K/V, FFN in)
    original, after = _scores(outlier_bert, feeds), _scores(smoothed, feeds)
    assert original.std() > 0.05  # a spread of scores, not all ~0.5
    assert np.abs(after - original).max() < 1e-4


def test_smoothing_touches_only_layernorm_matmul_pairs(raw_bert: Path) -> None:
    model = onnx.load(str(raw_bert))
    sites = smoothing_sites(model)
    assert {len(site.matmuls) for site in sites} == {1, 3}  # FFN in; Q, K and V share their LayerNorm
    ranges = activation_ranges(model, [site.output for site in sites], _feeds(2, seed=1))
    smoothed, count = smooth_model(model, ranges, alpha=0.5)
    assert count == len(sites) == 4

    before = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    after = {init.name: numpy_helper.to_array(init) for init in smoothed.graph.initializer}
    smoothed_weights = {model.graph.node[i].input[1] for site in sites for i in site.matmuls}
    changed = {name for name in before if name in after and not np.array_equal(before[name], after[name])}
    assert changed == smoothed_weights and len(changed) == 8
    # The MatMuls reading anything else (attention out and FFN out of each layer) keep their weights.
    constant_matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in before]
    assert len(constant_matmuls) - len(changed) == 4

    # Nodes by their (unique) first output; only the smoothed LayerNorms read new gamma and beta.
    old = {n.output[0]: n for n in model.graph.node}
    new = {n.output[0]: n for n in smoothed.graph.node}
    moved = {out for out, n in old.items() if out in new and list(n.input) != list(new[out].input)}
    assert {out for out in moved if old[out].op_type == "LayerNormalization"} == {site.output for site in sites}
    # BERT is post-LN: a smoothed LayerNorm output is also the residual; one Mul per site restores it for
    # the residual Add, the only other node rewired.
    added = [n for out, n in new.items() if out not in old]
    assert [n.op_type for n in added] == ["Mul"] * 4
    assert sorted(old[out].op_type for out in moved) == ["Add"] * 4 + ["LayerNormalization"] * 4
    # The untrained gammas and betas were shared through Identity nodes; the smoothed norms own theirs.
    identities = sum(n.op_type == "Identity" for n in model.graph.node)
    assert identities > sum(n.op_type == "Identity" for n in smoothed.graph.node)


@pytest.mark.parametrize("scheme", ["per-token", "per-token-mixed"])
def test_smoothing_reduces_int8_error_with_an_outlier_channel(outlier_bert: Path, tmp_path: Path, scheme: str) -> None:
    model = onnx.load(str(outlier_bert))
    sites = smoothing_sites(model)
    ranges = activation_ranges(model, [site.output for site in sites], _feeds(2, seed=1))
    assert all(ranges[site.output][OUTLIER_CHANNEL] > 20 * np.median(ranges[site.output]) for site in sites)
    feeds = _feeds(25, seed=2)  # 400 pairs
    reference = _scores(outlier_bert, feeds)
    smoothed = tmp_path / "smoothed.onnx"
    smooth(outlier_bert, smoothed, _feeds(4, seed=3), alpha=0.5)
    figures = {}
    for name, source in (("plain", outlier_bert), ("smoothed", smoothed)):
        out = tmp_path / f"{name}.int8.onnx"
        quantize_int8(source, out, Int8Recipe(scheme))
        figures[name] = parity(reference, _scores(out, feeds), threshold=float(np.median(reference)))
    plain, after = figures["plain"], figures["smoothed"]
    # measured: per-token 6 -> 2 flips, max diff 0.095 -> 0.031; per-token-mixed 9 -> 2, 0.154 -> 0.033
    assert plain["flips"] >= 5 and after["flips"] <= plain["flips"] // 2
    assert plain["max_abs_diff"] > 0.08 and after["max_abs_diff"] < 0.04
    assert after["mean_abs_diff"] < plain["mean_abs_diff"] / 2


def test_pre_ln_modernbert_smooths_without_run_time_ops(tmp_path: Path) -> None:
    raw = export_raw(tiny_cross_encoder("modernbert", tmp_path / "checkpoint"), tmp_path)
    model = onnx.load(str(raw))
    sites = smoothing_sites(model)
    # attn_norm -> Wqkv and mlp_norm -> Wi read nothing else; only the embeddings norm is also the residual
    assert [len(site.residual) for site in sites] == [1, 0, 0, 0]
    feeds = _feeds(4, seed=4)
    smoothed = tmp_path / "smoothed.onnx"
    assert smooth(raw, smoothed, feeds[:2], alpha=0.5) == 4
    assert sum(n.op_type == "Mul" for n in onnx.load(str(smoothed)).graph.node) == 1 + sum(
        n.op_type == "Mul" for n in model.graph.node
    )
    assert np.abs(_scores(smoothed, feeds) - _scores(raw, feeds)).max() < 1e-4
