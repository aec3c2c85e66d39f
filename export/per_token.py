"""int8 MatMuls with per-token (per-row) asymmetric activation scales, in standard ONNX ops.

ONNX Runtime's dynamic quantization uses one activation scale per tensor, so one outlier token
coarsens every other token of the batch; on product cross-encoders that flips dedup decisions
(BRIEF §5). Here each row (token) of the activation gets its own uint8 scale and zero point:

    s, z   = (max_row - min_row) / 255, round(-min_row / s)    per row, the range including 0
    q      = QuantizeLinear(x, s, z, axis=0)                   uint8 [rows, K]
    y      = MatMulIntegerToFloat(q, W_q, 1, s_col) * s - (s * z) (x) (colsum(W_q) * s_col)

`W_q` is int8 per output channel with 7 bits (|W_q| <= 63), so AVX2's u8 x s8 multiply-add
(vpmaddubsw adds pairs of products in int16) cannot saturate: 2 * 255 * 63 < 32767. MatMuls that
read the same activation (Q, K and V) share one quantization of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHT_MAX = 63
MS_DOMAIN = "com.microsoft"


def _quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 (7-bit) weights and their float scales."""
    scale = np.abs(weight).max(axis=0) / WEIGHT_MAX
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    quantized = np.clip(np.round(weight / scale), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)
    return quantized, scale


@dataclass
class _Quantized:
    """Names of an activation's per-row quantization: 2-D uint8 values, row scales, s * z."""

    values: str
    scale: str
    offset: str


class _Builder:
    """Appends the per-token nodes for one graph, sharing quantized activations between MatMuls."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []
        self.cache: dict[tuple[str, int], _Quantized] = {}
        self.count = 0
        for name, value in {
            "pt_zero": np.array(0.0, np.float32),
            "pt_one": np.array(1.0, np.float32),
            "pt_inv255": np.array(1.0 / 255.0, np.float32),
            "pt_eps": np.array(1e-8, np.float32),
            "pt_axis1": np.array([1], np.int64),
        }.items():
            graph.initializer.append(numpy_helper.from_array(value, name))

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain or None, **attrs))
        return output

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def quantize(self, x: str, k: int) -> _Quantized:
        """Per-row uint8 quantization of activation `x` (last dimension `k`), built once per activation."""
        if (x, k) in self.cache:
            return self.cache[(x, k)]
        p = f"pt_q{len(self.cache)}_"
        shape = self.initializer(p + "shape", np.array([-1, k], np.int64))
        flat = self.node("Reshape", [x, shape], p + "flat")
        low = self.node("Min", [self.node("ReduceMin", [flat], p + "min0", axes=[1], keepdims=0), "pt_zero"], p + "min")
        high = self.node(
            "Max", [self.node("ReduceMax", [flat], p + "max0", axes=[1], keepdims=0), "pt_zero"], p + "max"
        )
        span = self.node("Mul", [self.node("Sub", [high, low], p + "span"), "pt_inv255"], p + "s0")
        scale = self.node("Max", [span, "pt_eps"], p + "s")
        zero_f = self.node("Round", [self.node("Neg", [self.node("Div", [low, scale], p + "lz")], p + "nz")], p + "zf")
        zero = self.node("Cast", [zero_f], p + "z", to=TensorProto.UINT8)
        values = self.node("QuantizeLinear", [flat, scale, zero], p + "q", axis=0)
        column = self.node("Unsqueeze", [scale, "pt_axis1"], p + "s_col")
        offset = self.node("Unsqueeze", [self.node("Mul", [scale, zero_f], p + "sz"), "pt_axis1"], p + "sz_col")
        self.cache[(x, k)] = _Quantized(values, column, offset)
        return self.cache[(x, k)]

    def matmul(self, node: onnx.NodeProto, weight: np.ndarray) -> None:
        """Replace `node` (x @ weight) with its per-token int8 form."""
        self.count += 1
        p = f"pt_m{self.count}_"
        k, n = weight.shape
        q = self.quantize(node.input[0], k)
        quantized, col_scale = _quantize_weight(weight)
        wq = self.initializer(p + "wq", quantized)
        ws = self.initializer(p + "ws", col_scale)
        correction = self.initializer(p + "cw", (quantized.astype(np.float32).sum(axis=0) * col_scale))
        acc = self.node("MatMulIntegerToFloat", [q.values, wq, "pt_one", ws], p + "acc", domain=MS_DOMAIN)
        scaled = self.node("Mul", [acc, q.scale], p + "scaled")
        shift = self.node("Mul", [q.offset, correction], p + "shift")
        flat = self.node("Sub", [scaled, shift], p + "flat")
        x_shape = self.node("Shape", [node.input[0]], p + "xshape")
        lead = self.node(
            "Slice",
            [
                x_shape,
                self.initializer(p + "s0", np.array([0], np.int64)),
                self.initializer(p + "s1", np.array([-1], np.int64)),
            ],
            p + "lead",
        )
        out_shape = self.node(
            "Concat", [lead, self.initializer(p + "n", np.array([n], np.int64))], p + "oshape", axis=0
        )
        self.nodes.append(helper.make_node("Reshape", [flat, out_shape], [node.output[0]], name=p + "out"))


def quantize_per_token(fp32_path: Path, out_path: Path, skip: Callable[[onnx.NodeProto], bool]) -> int:
    """Rewrite every MatMul whose B is a 2-D float initializer (unless `skip(node)`); returns how many."""
    model = onnx.load(str(fp32_path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    builder = _Builder(graph)
    for node in list(graph.node):
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT or skip(node):
            builder.nodes.append(node)
            continue
        builder.matmul(node, numpy_helper.to_array(weight))
    del graph.node[:]
    graph.node.extend(builder.nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(opset.domain == MS_DOMAIN for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    onnx.save(model, str(out_path))
    return builder.count
