"""int8 MatMuls with per-token (per-row) activation scales, in standard ONNX ops.

ONNX Runtime's dynamic quantization uses one activation scale per tensor, so one outlier token
coarsens every other token of the batch; on product cross-encoders that flips dedup decisions
(benchmarks/NOTES.md 12). Here each row (token) of the activation gets its own uint8 scale and zero point:

    s, z   = (max_row - min_row) / 255, round(-min_row / s)    per row, the range including 0
    q      = QuantizeLinear(x, s, z, axis=0)                   uint8 [rows, K]
    y      = MatMulIntegerToFloat(q, W_q, 1, s_col) * s - (s * z) (x) (colsum(W_q) * s_col)

With `symmetric` (the `per-token-mixed` recipe), activations that come out of LayerNorm or attention
(centred around 0) use a symmetric row scale and the fixed zero point 128, which the GEMM applies
itself, so the rank-1 correction disappears:

    s      = max|x_row| / 127,   q = QuantizeLinear(x, s, 128, axis=0)
    y      = MatMulIntegerToFloat(q, W_q, 1, s_col, 128) * s

Activations out of GELU / GeGLU (one-sided) keep the asymmetric scheme.

`W_q` is int8 per output channel with 7 bits (|W_q| <= 63), so AVX2's u8 x s8 multiply-add
(vpmaddubsw adds pairs of products in int16) cannot saturate: 2 * 255 * 63 < 32767. MatMuls that
read the same activation (Q, K and V) share one quantization of it. `weights` may bring a weight's int8
values already rounded on that grid (`export.smoothing`'s GPTQ rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


CENTRED = {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization", "Reshape", "Transpose"}


@dataclass
class _Quantized:
    """Names of an activation's per-row quantization: 2-D uint8 values, row scales, and s * z
    (None when symmetric: zero point 128, applied by the GEMM)."""

    values: str
    scale: str
    offset: str | None


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
            "pt_inv127": np.array(1.0 / 127.0, np.float32),
            "pt_zp128": np.array(128, np.uint8),
        }.items():
            graph.initializer.append(numpy_helper.from_array(value, name))

    def node(self, op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain or None, **attrs))
        return output

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def quantize(self, x: str, k: int, symmetric: bool) -> _Quantized:
        """Per-row uint8 quantization of activation `x` (last dimension `k`), built once per activation."""
        if (x, k) in self.cache:
            return self.cache[(x, k)]
        p = f"pt_q{len(self.cache)}_"
        shape = self.initializer(p + "shape", np.array([-1, k], np.int64))
        flat = self.node("Reshape", [x, shape], p + "flat")
        if symmetric:
            high = self.node("ReduceMax", [self.node("Abs", [flat], p + "abs")], p + "max", axes=[1], keepdims=0)
            scale = self.node("Max", [self.node("Mul", [high, "pt_inv127"], p + "s0"), "pt_eps"], p + "s")
            zero = self.node("Expand", ["pt_zp128", self.node("Shape", [scale], p + "rows")], p + "z")
            values = self.node("QuantizeLinear", [flat, scale, zero], p + "q", axis=0)
            self.cache[(x, k)] = _Quantized(values, self.node("Unsqueeze", [scale, "pt_axis1"], p + "s_col"), None)
            return self.cache[(x, k)]
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

    def matmul(
        self,
        node: onnx.NodeProto,
        weight: np.ndarray,
        symmetric: bool,
        rounded: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Replace `node` (x @ weight) with its per-token int8 form (`rounded`: the weight's int8 values and
        column scales, when already chosen)."""
        self.count += 1
        p = f"pt_m{self.count}_"
        k, n = weight.shape
        q = self.quantize(node.input[0], k, symmetric)
        quantized, col_scale = rounded if rounded is not None else _quantize_weight(weight)
        wq = self.initializer(p + "wq", quantized)
        ws = self.initializer(p + "ws", col_scale)
        if q.offset is None:
            acc = self.node(
                "MatMulIntegerToFloat", [q.values, wq, "pt_one", ws, "pt_zp128"], p + "acc", domain=MS_DOMAIN
            )
            flat = self.node("Mul", [acc, q.scale], p + "flat")
        else:
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


def quantize_per_token(
    fp32_path: Path,
    out_path: Path,
    skip: Callable[[onnx.NodeProto], bool],
    symmetric: bool = False,
    weights: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> int:
    """Rewrite every MatMul whose B is a 2-D float initializer (unless `skip(node)`); returns how many.
    `symmetric`: centred activations (made by an op in `CENTRED`) get symmetric row scales. `weights`:
    int8 values and column scales by weight name, used instead of rounding to nearest."""
    weights = weights or {}
    model = onnx.load(str(fp32_path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producers = {output: node.op_type for node in graph.node for output in node.output}
    builder = _Builder(graph)
    for node in list(graph.node):
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT or skip(node):
            builder.nodes.append(node)
            continue
        centred = symmetric and producers.get(node.input[0]) in CENTRED
        builder.matmul(node, numpy_helper.to_array(weight), centred, weights.get(weight.name))
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
