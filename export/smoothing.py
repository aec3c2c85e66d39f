"""Calibrated int8 with every layer in int8: smoothing of outlier channels, and error-compensating weight
rounding, both from activations measured on fitting pairs (`export.calibration.fitting_pairs`: never the pairs
the gate grades); benchmarks/results/int8-calibrated/notes.md.

Smoothing divides channel j of a MatMul's input by s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha) and
multiplies row j of the weight by s_j (x / s @ diag(s) W == x @ W: the fp32 graph is unchanged within
rounding):
- after a LayerNorm, 1/s folds into its gamma and beta (post-LN BERT: a `Mul` restores the residual);
- after GELU / GeGLU (the FFN-out input), which is not scale equivariant, an explicit `Mul` by 1/s runs
  before the per-token quantization (one elementwise pass over [tokens, intermediate] per layer).

Rounding (GPTQ): each weight keeps `export.per_token`'s grid (7 bits per output channel), but its rows are
rounded one at a time and each row's rounding error is moved onto the rows not yet rounded, weighted by the
calibration Hessian H = X^T X of the MatMul input. On the hard MiniLM case most of the int8 error came from
the 7-bit weights (weights alone, activations fp32: 11 flips of 1000), not from the activations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export.per_token import CENTRED, WEIGHT_MAX

SHAPE_ONLY = {"Shape"}  # consumers that read only the shape, which smoothing keeps
MIN_SCALE = 1e-5
ALPHA = 0.5  # the product's migration strength (benchmarks/results/int8-calibrated/notes.md)
DAMP = 0.01  # GPTQ's Hessian damping, as a fraction of its mean diagonal

QuantizedWeights = dict[str, tuple[np.ndarray, np.ndarray]]  # weight name -> (int8 values, column scales)


@dataclass(frozen=True)
class NormSite:
    """A LayerNormalization whose output feeds MatMuls with constant weights; `residual`: the other readers,
    which need the unsmoothed value back. Nodes are positions in `graph.node` (node names can be empty)."""

    norm: int
    output: str
    matmuls: tuple[int, ...]
    residual: tuple[int, ...]


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Constant tensors by name: initializers, Constant nodes and Identity nodes that read one."""
    constants = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            constants[node.output[0]] = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
    return constants


def _readers(graph: onnx.GraphProto) -> dict[str, list[int]]:
    readers: dict[str, list[int]] = {}
    for position, node in enumerate(graph.node):
        for name in node.input:
            readers.setdefault(name, []).append(position)
    return readers


def _constant_weight(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> onnx.TensorProto | None:
    """B of a MatMul when it is a 2-D float initializer (what `export.per_token` quantizes)."""
    weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
    if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
        return None
    return weight


def norm_sites(model: onnx.ModelProto) -> list[NormSite]:
    """Every LayerNormalization with constant gamma (and beta) whose output is the A input of at least one
    MatMul with a constant weight read by nothing else."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = _constants(graph)
    readers = _readers(graph)
    sites = []
    for position, node in enumerate(graph.node):
        if node.op_type != "LayerNormalization" or any(name not in constants for name in node.input[1:]):
            continue
        matmuls, residual = [], []
        for index in readers.get(node.output[0], []):
            reader = graph.node[index]
            weight = _constant_weight(reader, initializers)
            if weight is not None and reader.input[0] == node.output[0] and len(readers[weight.name]) == 1:
                matmuls.append(index)
            elif reader.op_type not in SHAPE_ONLY:
                residual.append(index)
        if matmuls:
            sites.append(NormSite(position, node.output[0], tuple(matmuls), tuple(residual)))
    return sites


def ffn_out_sites(model: onnx.ModelProto) -> list[int]:
    """Positions of the MatMuls (constant weight read by nothing else) whose input is made by a node that is
    not in `export.per_token.CENTRED`: the FFN-out projections, which read GELU / GeGLU."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producers = {output: node.op_type for node in graph.node for output in node.output}
    readers = _readers(graph)
    return [
        position
        for position, node in enumerate(graph.node)
        if (weight := _constant_weight(node, initializers)) is not None
        and len(readers[weight.name]) == 1
        and producers.get(node.input[0], "LayerNormalization") not in CENTRED
    ]


def ffn_matmuls(model: onnx.ModelProto) -> set[str]:
    """Names of the feed-forward MatMuls: the FFN-out ones (`ffn_out_sites`) and the constant-weight MatMuls
    whose output reaches an FFN-out input without passing another MatMul or a norm (FFN in / Wi)."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    readers = _readers(graph)
    outs = [graph.node[position] for position in ffn_out_sites(model)]
    targets = {node.input[0] for node in outs}
    stops = {"MatMul", "Gemm", "LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization"}
    names = {node.name for node in outs}
    for node in graph.node:
        if _constant_weight(node, initializers) is None or node.name in names:
            continue
        frontier, seen = list(node.output), set()
        while frontier:
            tensor = frontier.pop()
            if tensor in targets:
                names.add(node.name)
                break
            for position in readers.get(tensor, []):
                reader = graph.node[position]
                if reader.op_type not in stops and position not in seen:
                    seen.add(position)
                    frontier.extend(reader.output)
    return names


def _probe(model: onnx.ModelProto, tensors: list[str]) -> ort.InferenceSession:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])


def _token_rows(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The rows of real tokens (padding never changes a score)."""
    return value[mask] if value.shape[:2] == mask.shape else value.reshape(-1, value.shape[-1])


def _token_activations(
    model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict[str, np.ndarray]]
) -> Iterator[dict[str, np.ndarray]]:
    """For each feed, each tensor's rows of real tokens (last axis as channels)."""
    session = _probe(model, tensors)
    inputs = [i.name for i in session.get_inputs()]
    for feed in feeds:
        mask = feed["attention_mask"].astype(bool)
        values = session.run(tensors, {n: feed[n] for n in inputs})
        yield {name: _token_rows(value, mask) for name, value in zip(tensors, values, strict=True)}


def activation_ranges(
    model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of each tensor (last axis) over the real tokens of `feeds`."""
    ranges: dict[str, np.ndarray] = {}
    for batch in _token_activations(model, tensors, feeds):
        for name, rows in batch.items():
            high = np.abs(rows).max(axis=0)
            ranges[name] = np.maximum(ranges[name], high) if name in ranges else high
    if len(ranges) != len(tensors):
        raise ValueError("no calibration batches to measure activation ranges on")
    return ranges


def hessians(
    model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """X^T X / tokens of each tensor (last axis as channels) over the real tokens of `feeds`."""
    sums: dict[str, np.ndarray] = {}
    tokens = 0
    for batch in _token_activations(model, tensors, feeds):
        tokens += len(batch[tensors[0]])
        for name, rows in batch.items():
            rows = rows.astype(np.float64)
            sums[name] = sums[name] + rows.T @ rows if name in sums else rows.T @ rows
    if len(sums) != len(tensors):
        raise ValueError("no calibration batches to measure activations on")
    return {name: value / max(tokens, 1) for name, value in sums.items()}


def smoothing_scales(activation_max: np.ndarray, weight_max: np.ndarray, alpha: float) -> np.ndarray:
    """s_j = max|X_j|^alpha / max|W_j|^(1-alpha); 1 where a channel never fires or has no weight.

    >>> smoothing_scales(np.array([16.0, 1.0, 0.0]), np.array([1.0, 1.0, 2.0]), 0.5).tolist()
    [4.0, 1.0, 1.0]
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    valid = (activation_max > 0) & (weight_max > 0)
    scales = np.ones_like(activation_max, dtype=np.float64)
    scales[valid] = activation_max[valid] ** alpha / weight_max[valid] ** (1.0 - alpha)
    return np.maximum(scales, MIN_SCALE).astype(np.float32)


def _set(init: onnx.TensorProto, value: np.ndarray) -> None:
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))


def smooth_model(
    model: onnx.ModelProto, ranges: dict[str, np.ndarray], alpha: float
) -> tuple[onnx.ModelProto, int, int]:
    """A copy of `model` with every LayerNorm site and every FFN-out input in `ranges` smoothed; returns it,
    the number of LayerNorm sites and the number of FFN-out MatMuls smoothed."""
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    graph = smoothed.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = _constants(graph)
    nodes = graph.node
    after: dict[int, onnx.NodeProto] = {}  # a Mul to insert after the node at that position
    before: dict[int, onnx.NodeProto] = {}  # ... before it
    sites = [site for site in norm_sites(smoothed) if site.output in ranges]
    for index, site in enumerate(sites):
        weights = [initializers[nodes[position].input[1]] for position in site.matmuls]
        arrays = [numpy_helper.to_array(weight) for weight in weights]
        scales = smoothing_scales(ranges[site.output], np.max([np.abs(a).max(axis=1) for a in arrays], axis=0), alpha)
        for weight, array in zip(weights, arrays, strict=True):
            _set(weight, array * scales[:, None])
        norm = nodes[site.norm]
        for slot, name in enumerate(norm.input[1:], start=1):
            norm.input[slot] = f"smooth_ln{index}_{slot}"
            graph.initializer.append(
                numpy_helper.from_array(
                    (numpy_helper.to_array(constants[name]) / scales).astype(np.float32), norm.input[slot]
                )
            )
        if site.residual:
            restored = f"smooth_ln{index}_restored"
            graph.initializer.append(numpy_helper.from_array(scales, f"smooth_ln{index}_scale"))
            after[site.norm] = helper.make_node(
                "Mul", [site.output, f"smooth_ln{index}_scale"], [restored], name=f"/smoothing/restore{index}"
            )
            for position in site.residual:
                reader = nodes[position]
                for slot, value in enumerate(reader.input):
                    if value == site.output:
                        reader.input[slot] = restored
    ffn = [position for position in ffn_out_sites(smoothed) if nodes[position].input[0] in ranges]
    for index, position in enumerate(ffn):
        node = nodes[position]
        weight = initializers[node.input[1]]
        array = numpy_helper.to_array(weight)
        scales = smoothing_scales(ranges[node.input[0]], np.abs(array).max(axis=1), alpha)
        _set(weight, array * scales[:, None])
        graph.initializer.append(numpy_helper.from_array((1.0 / scales).astype(np.float32), f"smooth_ffn{index}_inv"))
        before[position] = helper.make_node(
            "Mul",
            [node.input[0], f"smooth_ffn{index}_inv"],
            [f"smooth_ffn{index}_x"],
            name=f"{node.name.rsplit('/', 1)[0]}/SmoothMul" if "/" in node.name else f"/smoothing/ffn{index}",
        )
        node.input[0] = f"smooth_ffn{index}_x"
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    ordered = []
    for position, node in enumerate(graph.node):
        if position in before:
            ordered.append(before[position])
        if node.op_type not in ("Identity", "Constant") or node.output[0] in read:  # drop constants left unread
            ordered.append(node)
        if position in after:
            ordered.append(after[position])
    del graph.node[:]
    graph.node.extend(ordered)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return smoothed, len(sites), len(ffn)


def gptq_round(
    weight: np.ndarray, hessian: np.ndarray, damp: float = DAMP, max_level: int = WEIGHT_MAX
) -> tuple[np.ndarray, np.ndarray]:
    """int8 values [K, N] (|q| <= max_level) and column scales [N] of `weight` [K, N] (y = x @ W) on a
    symmetric per-column grid (scale = max|W_col| / max_level; default `export.per_token`'s 7 bits), rows
    rounded in order with GPTQ's error feedback through `hessian` (X^T X of the input, [K, K])."""
    w = weight.astype(np.float64)
    scale = np.abs(w).max(axis=0) / max_level
    scale[scale == 0] = 1.0
    h = hessian.astype(np.float64)
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * np.mean(np.diag(h)) * np.eye(len(h))
    upper = np.linalg.cholesky(np.linalg.inv(h)).T
    quantized = np.zeros(w.shape, np.int8)
    for row in range(w.shape[0]):
        q = np.clip(np.round(w[row] / scale), -max_level, max_level)
        quantized[row] = q
        error = (w[row] - q * scale) / upper[row, row]
        w[row + 1 :] -= np.outer(upper[row, row + 1 :], error)
    return quantized, scale.astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """What the fitting pairs measured, once per export: the smoothed fp32 graph (serialized), and for GPTQ each
    constant-weight MatMul (by node name) with its weight (by initializer name, fp32) and the Hessian of its
    input. `rounded` turns it into int8 weights on any grid, for any set of MatMuls left in fp32."""

    model: bytes
    matmuls: dict[str, tuple[str, np.ndarray, np.ndarray]]  # node name -> (weight name, weight, input Hessian)
    done: dict[str, int]  # sites smoothed

    def rounded(self, max_level: int = WEIGHT_MAX, skip: frozenset[str] = frozenset()) -> QuantizedWeights:
        """GPTQ-rounded weights with |q| <= max_level, keyed by initializer name; MatMuls in `skip` left out."""
        return {
            name: gptq_round(weight, hessian, max_level=max_level)
            for node, (name, weight, hessian) in self.matmuls.items()
            if node not in skip
        }


def calibrate(raw_path: Path, feeds: list[dict[str, np.ndarray]], alpha: float | None, gptq: bool) -> Calibration:
    """Smooth the fp32 graph of `raw_path` (if `alpha`) and measure what GPTQ needs (if `gptq`) on `feeds`."""
    model = onnx.load(str(raw_path))
    done = {"smoothed_norms": 0, "smoothed_ffn_out": 0}
    if alpha is not None:
        tensors = [site.output for site in norm_sites(model)]
        tensors += [model.graph.node[position].input[0] for position in ffn_out_sites(model)]
        model, done["smoothed_norms"], done["smoothed_ffn_out"] = smooth_model(
            model, activation_ranges(model, list(dict.fromkeys(tensors)), feeds), alpha
        )
    matmuls: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    if gptq:
        initializers = {init.name: init for init in model.graph.initializer}
        nodes = [node for node in model.graph.node if _constant_weight(node, initializers) is not None]
        inputs = hessians(model, list(dict.fromkeys(node.input[0] for node in nodes)), feeds)
        for node in nodes:
            weight = numpy_helper.to_array(initializers[node.input[1]])
            matmuls[node.name] = (node.input[1], weight, inputs[node.input[0]])
    return Calibration(model.SerializeToString(), matmuls, done)


def calibrated(
    cache: dict[tuple, Calibration], raw_path: Path, feeds: list[dict[str, np.ndarray]], alpha: float | None, gptq: bool
) -> Calibration:
    """`calibrate`, once per graph and settings for an export (`cache`: a dict the caller keeps)."""
    key = (str(raw_path), alpha, gptq)
    if key not in cache:
        cache[key] = calibrate(raw_path, feeds, alpha, gptq)
    return cache[key]
