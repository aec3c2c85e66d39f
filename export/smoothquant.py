"""SmoothQuant-style smoothing of the fp32 graph, before per-token int8 quantization.

Per-token activation scales (`export.per_token`) stop an outlier *token* from coarsening the others, but
an outlier *channel* inside a token still sets that token's scale. On a trained MiniLM product
cross-encoder, channel 99 of every LayerNorm output reaches 21-30 on the built-in calibration pairs where
the median channel peaks at ~2. Smoothing divides channel j of a LayerNorm's output by

    s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)

(max|X_j| over the calibration tokens, max|W_j| over row j of every weight that reads it), folded into the
LayerNorm's gamma and beta, and multiplies row j of those weights by s_j: each product is unchanged (the
graph stays fp32 and equal to the original within float rounding), the activation is flatter and the
weights absorb the range, where int8 scales are per output channel.

Pre-LN graphs (ModernBERT: a norm feeds only Wqkv or Wi) fold at no run-time cost. In post-LN graphs
(BERT) the norm's output is also the residual stream; there an elementwise `Mul` by s restores it for
the residual consumers (one per LayerNorm).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SHAPE_ONLY = {"Shape"}  # consumers that read only the shape, which smoothing keeps
MIN_SCALE = 1e-5


@dataclass(frozen=True)
class Site:
    """A LayerNormalization whose output feeds MatMuls with constant weights; `residual`: the other
    readers, which need the unsmoothed value back. Nodes are positions in `graph.node` (exported node
    names can be empty)."""

    norm: int
    output: str
    matmuls: tuple[int, ...]
    residual: tuple[int, ...]


def _constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """Constant tensors by name: initializers, Constant nodes (ModernBERT's zero LayerNorm beta) and
    Identity nodes that read one (the exporter shares equal tensors, e.g. untrained gammas, that way)."""
    constants = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            constants[node.output[0]] = node.attribute[0].t
        elif node.op_type == "Identity" and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
    return constants


def smoothing_sites(model: onnx.ModelProto) -> list[Site]:
    """Every LayerNormalization with constant gamma (and beta) whose output is the A input of at least one
    MatMul with a 2-D float initializer as B, each such weight read by nothing else."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = _constants(graph)
    readers: dict[str, list[int]] = {}
    for position, node in enumerate(graph.node):
        for name in node.input:
            readers.setdefault(name, []).append(position)
    sites = []
    for position, node in enumerate(graph.node):
        if node.op_type != "LayerNormalization" or any(name not in constants for name in node.input[1:]):
            continue
        matmuls, residual = [], []
        for index in readers.get(node.output[0], []):
            reader = graph.node[index]
            weight = initializers.get(reader.input[1]) if reader.op_type == "MatMul" else None
            if (
                weight is not None
                and reader.input[0] == node.output[0]
                and len(weight.dims) == 2
                and weight.data_type == TensorProto.FLOAT
                and len(readers[weight.name]) == 1
            ):
                matmuls.append(index)
            elif reader.op_type not in SHAPE_ONLY:
                residual.append(index)
        if matmuls:
            sites.append(Site(position, node.output[0], tuple(matmuls), tuple(residual)))
    return sites


def activation_ranges(
    model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of each tensor (last axis) over the real tokens of `feeds` (rows where
    `attention_mask` is 1; padding rows never change a score), running the fp32 graph with ONNX Runtime."""
    if not tensors:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {output.name for output in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    ranges: dict[str, np.ndarray] = {}
    for feed in feeds:
        mask = feed["attention_mask"].astype(bool)
        for name, value in zip(tensors, session.run(tensors, {n: feed[n] for n in inputs}), strict=True):
            rows = value[mask] if value.shape[:2] == mask.shape else value.reshape(-1, value.shape[-1])
            high = np.abs(rows).max(axis=0)
            ranges[name] = np.maximum(ranges[name], high) if name in ranges else high
    if len(ranges) != len(tensors):
        raise ValueError("no calibration batches to measure activation ranges on")
    return ranges


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


def smooth_model(model: onnx.ModelProto, ranges: dict[str, np.ndarray], alpha: float) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with every site in `ranges` (keyed by the LayerNorm output) smoothed; returns it
    and how many sites were smoothed."""
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    graph = smoothed.graph
    sites = [site for site in smoothing_sites(smoothed) if site.output in ranges]
    initializers = {init.name: init for init in graph.initializer}
    constants = _constants(graph)
    nodes = graph.node
    compensations: dict[int, onnx.NodeProto] = {}
    for index, site in enumerate(sites):
        weights = [initializers[nodes[position].input[1]] for position in site.matmuls]
        arrays = [numpy_helper.to_array(weight) for weight in weights]
        weight_max = np.max([np.abs(array).max(axis=1) for array in arrays], axis=0)
        scales = smoothing_scales(ranges[site.output], weight_max, alpha)
        for weight, array in zip(weights, arrays, strict=True):
            weight.CopyFrom(numpy_helper.from_array((array * scales[:, None]).astype(np.float32), weight.name))
        norm = nodes[site.norm]
        for slot, name in enumerate(norm.input[1:], start=1):
            value = numpy_helper.to_array(constants[name]) / scales
            norm.input[slot] = f"sq{index}_{slot}"
            graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), norm.input[slot]))
        if site.residual:
            restored = f"sq{index}_restored"
            graph.initializer.append(numpy_helper.from_array(scales, f"sq{index}_scale"))
            compensations[site.norm] = helper.make_node(
                "Mul", [site.output, f"sq{index}_scale"], [restored], name=f"/smoothquant/restore{index}"
            )
            for position in site.residual:
                reader = nodes[position]
                for slot, value in enumerate(reader.input):
                    if value == site.output:
                        reader.input[slot] = restored
    read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    ordered = []
    for position, node in enumerate(graph.node):
        if node.op_type not in ("Identity", "Constant") or node.output[0] in read:  # drop constants left unread
            ordered.append(node)
        if position in compensations:
            ordered.append(compensations[position])
    del graph.node[:]
    graph.node.extend(ordered)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return smoothed, len(sites)


def smooth(raw_path: Path, out_path: Path, feeds: Iterable[dict[str, np.ndarray]], alpha: float) -> int:
    """Write the smoothed fp32 graph of `raw_path` (ranges measured on `feeds`); returns the sites smoothed."""
    model = onnx.load(str(raw_path))
    tensors = [site.output for site in smoothing_sites(model)]
    smoothed, count = smooth_model(model, activation_ranges(model, tensors, feeds), alpha)
    onnx.save(smoothed, str(out_path))
    return count
