"""int8 recipes: per-token activation scales against ONNX Runtime's per-tensor dynamic quantization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.exporter import int8_recipes
from export.quantize import Int8Recipe, layer_of, quantize_int8


def _matmul_graph(path: Path, weight: np.ndarray) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", weight.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", weight.shape[1]])
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="/encoder/layer.0/dense/MatMul")
    graph = helper.make_graph([node], "g", [x], [y], [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def outlier_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A MatMul and an activation where one token carries a 200x outlier."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (64, 48)).astype(np.float32)
    x = rng.normal(0, 1, (2, 7, 64)).astype(np.float32)
    x[0, 3, 5] = 200.0
    path = tmp_path_factory.mktemp("graph") / "matmul.onnx"
    _matmul_graph(path, weight)
    return path, x, x @ weight


def test_per_token_keeps_ordinary_tokens_accurate(
    outlier_case: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path, x, expected = outlier_case
    errors = {}
    for scheme in ("per-tensor", "per-token", "per-token-mixed"):
        out = tmp_path / f"{scheme}.onnx"
        quantize_int8(path, out, Int8Recipe(scheme))
        got = _run(out, x)
        assert got.shape == expected.shape
        ordinary = np.ones(x.shape[:2], bool)
        ordinary[0, 3] = False
        errors[scheme] = np.abs(got - expected)[ordinary].max() / np.abs(expected).max()
    assert errors["per-token"] < 0.01
    assert errors["per-token"] < errors["per-tensor"] / 5
    assert errors["per-token-mixed"] == errors["per-token"]  # a graph input is not known to be centred


def test_mixed_scheme_is_symmetric_after_layernorm_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hidden, weight = 64, rng.normal(0, 0.05, (64, 48)).astype(np.float32)
    x = rng.normal(0.3, 2, (2, 9, hidden)).astype(np.float32)
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["h"], axis=-1),
        helper.make_node("MatMul", ["h", "w"], ["y"], name="/encoder/layer.0/dense/MatMul"),
        helper.make_node("MatMul", ["x", "w"], ["z"], name="/encoder/layer.0/raw/MatMul"),
    ]
    ones, zeros = np.ones(hidden, np.float32), np.zeros(hidden, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((weight, "w"), (ones, "gamma"), (zeros, "beta"))]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "y", "z")]
    path = tmp_path / "ln.onnx"
    onnx.save(
        helper.make_model(
            helper.make_graph(nodes, "g", io[:1], io[1:], inits), opset_imports=[helper.make_opsetid("", 17)]
        ),
        str(path),
    )
    normed = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    out = tmp_path / "mixed.onnx"
    quantize_int8(path, out, Int8Recipe("per-token-mixed"))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y, z = session.run(None, {"x": x})
    assert np.abs(y - normed @ weight).max() / np.abs(normed @ weight).max() < 0.02
    assert np.abs(z - x @ weight).max() / np.abs(x @ weight).max() < 0.02
    gemms = [n for n in onnx.load(str(out)).graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert sorted(len(n.input) for n in gemms) == [4, 5]  # the zero point 128 only after LayerNorm


def test_per_token_is_exact_on_representable_values(tmp_path: Path) -> None:
    weight = (np.arange(16 * 8).reshape(16, 8) % 7 - 3).astype(np.float32)  # already 7-bit integers
    path = tmp_path / "matmul.onnx"
    _matmul_graph(path, weight)
    x = np.tile(np.arange(16, dtype=np.float32) - 3, (1, 3, 1)) * 0.5  # min -1.5 .. max 6: 255 steps fit
    out = tmp_path / "pt.onnx"
    quantize_int8(path, out, Int8Recipe("per-token"))
    np.testing.assert_allclose(_run(out, x), x @ weight, rtol=0, atol=0.05)


def test_fp32_layers_are_left_alone(bert: tuple[Path, Path], tmp_path: Path) -> None:
    from export.onnx_graph import export_raw

    raw = export_raw(bert[0], tmp_path)
    out = tmp_path / "int8.onnx"
    quantize_int8(raw, out, Int8Recipe("per-token", fp32_layers=(0,)))
    model = onnx.load(str(out))
    plain = [
        n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in {i.name for i in model.graph.initializer}
    ]
    assert plain and {layer_of(n) for n in plain} == {0}
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in model.graph.node) == 6  # layer 1: q k v o in out


def test_fp32_feed_forward_parts_only(bert: tuple[Path, Path], tmp_path: Path) -> None:
    from export.onnx_graph import export_raw

    raw = export_raw(bert[0], tmp_path)
    out = tmp_path / "int8.onnx"
    recipe = Int8Recipe("per-token", fp32_layers=(0,), fp32_parts="ffn")
    quantize_int8(raw, out, recipe)
    assert recipe.to_dict()["fp32_parts"] == "ffn" and "fp32_parts" not in Int8Recipe("per-token").to_dict()
    model = onnx.load(str(out))
    weights = {i.name for i in model.graph.initializer}
    plain = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert sorted(plain) == [
        "/bert/encoder/layer.0/intermediate/dense/MatMul",
        "/bert/encoder/layer.0/output/dense/MatMul",
    ]
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in model.graph.node) == 10  # layer 0: q k v o; layer 1: all


def test_recipes_go_from_fastest_to_most_conservative() -> None:
    recipes = int8_recipes(list(range(6)))
    assert [r.activations for r in recipes[:4]] == ["per-token-mixed", "per-token"] * 2
    # every layer int8, calibrated (smoothing and GPTQ rounding), before any layer is kept fp32
    assert recipes[2:4] == [Int8Recipe(r.activations, smooth_alpha=0.5, rounding="gptq") for r in recipes[:2]]
    assert [r.calibrated for r in recipes] == [False, False, True, True] + [False] * 6
    # then the first layers in fp32: their feed-forward MatMuls only, then the whole layers
    assert [(r.fp32_layers, r.fp32_parts) for r in recipes[4:]] == [
        (layers, parts) for layers in [(0,), (0, 1), (0, 1, 2)] for parts in ("ffn", "layer")
    ]
    assert int8_recipes(list(range(6)), "per-token") == [recipes[1], recipes[3], *recipes[4:]]
    assert int8_recipes(list(range(6)), "per-tensor") == [Int8Recipe("per-tensor")]


def test_token_embeddings_are_int8_per_row(tmp_path: Path) -> None:
    from export.embedding import MIN_ROWS, quantize_embeddings

    rng = np.random.default_rng(2)
    table = rng.normal(0, 0.05, (MIN_ROWS, 16)).astype(np.float32)
    table[7] *= 40  # a token with large values must not coarsen the others
    shared = rng.normal(0, 1, (MIN_ROWS, 16)).astype(np.float32)  # also read by a MatMul: left alone
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("Gather", ["shared", "ids"], ["emb2"]),
        helper.make_node("MatMul", ["x", "shared"], ["proj"]),
    ]
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, None),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("emb", "emb2", "proj")]
    inits = [numpy_helper.from_array(table, "table"), numpy_helper.from_array(shared, "shared")]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    assert quantize_embeddings(model) == 1
    stored = {init.name: init.data_type for init in model.graph.initializer}
    assert stored == {"shared": TensorProto.FLOAT, "table_q": TensorProto.INT8, "table_scale": TensorProto.FLOAT}
    path = tmp_path / "emb.onnx"
    onnx.save(model, str(path))
    ids = np.array([[0, 7, 123], [MIN_ROWS - 1, 5, 7]], np.int64)
    x = rng.normal(0, 1, (3, MIN_ROWS)).astype(np.float32)
    emb, emb2, _ = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"ids": ids, "x": x})
    relative = np.abs(emb - table[ids]).max(axis=-1) / np.abs(table[ids]).max(axis=-1)
    assert relative.max() <= 0.5 / 127 + 1e-6  # half a step of each row's own scale
    np.testing.assert_array_equal(emb2, shared[ids])
