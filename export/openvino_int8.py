"""The `int8-openvino` graph: int8 weights that OpenVINO's CPU plugin multiplies with int8 activations it
quantizes on the fly, per token.

The graph is the unfused fp32 graph, smoothed like the calibrated ONNX Runtime recipes (`export.smoothing`:
LayerNorm and FFN-out outlier channels moved into the weights, alpha 0.5), with every MatMul weight replaced
by `DequantizeLinear(int8 weight, per-column scale)`: 8-bit values rounded by GPTQ on fitting pairs. OpenVINO
reads that pattern as compressed weights and, with `DYNAMIC_QUANTIZATION_GROUP_SIZE`, quantizes each MatMul's
input per group of that many channels of a token (the hidden size: one scale per token of hidden-width
inputs), so the products run on the CPU's int8 instructions (VNNI, AMX); the other ops run in the variant's
inference precision.

Measured on AMD EPYC (AVX512-VNNI and -BF16), trained MiniLM, 3000 held-back pairs, after load
(benchmarks/results/int8-calibrated/notes.md): 349 pairs/s against OpenVINO bf16's 253, 10 flips at 0.5
against the fp32 graph (bf16: 4); group size 384 against 128: 1.05x faster, as accurate; naive rounding
without smoothing: 15 flips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from export.smoothing import ALPHA, Calibration, calibrated

MAX_LEVEL = 127  # 8-bit weights: OpenVINO's int8 kernels take the full range (no u8 x s8 saturation concern)


def weight_only_int8(
    raw_path: Path,
    out_path: Path,
    calibration: list[dict[str, np.ndarray]],
    cache: dict[tuple, Calibration] | None = None,
) -> tuple[dict[str, int], list[list[int]]]:
    """Write the smoothed graph of `raw_path` with GPTQ-rounded int8 MatMul weights behind DequantizeLinear
    to `out_path`; returns what calibration did and the distinct int8 weight shapes [input channels, outputs].
    `cache`: the export's calibrations, shared with its int8 recipes (`export.quantize.quantize_int8`), so the
    fitting pairs run through the graph once."""
    fit = calibrated({} if cache is None else cache, raw_path, calibration, ALPHA, gptq=True)
    weights = fit.rounded(MAX_LEVEL)
    model = onnx.load_from_string(fit.model)
    graph = model.graph
    kept = [init for init in graph.initializer if init.name not in weights]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for name, (values, scales) in weights.items():
        graph.initializer.extend(
            [numpy_helper.from_array(values, f"{name}_int8"), numpy_helper.from_array(scales, f"{name}_scale")]
        )
    nodes: list[onnx.NodeProto] = [
        helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale"], [f"{name}_dequantized"], axis=1)
        for name in weights
    ]
    for node in graph.node:
        node.input[:] = [f"{name}_dequantized" if name in weights else name for name in node.input]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out_path))
    shapes = sorted({tuple(int(d) for d in values.shape) for values, _ in weights.values()})
    return {**fit.done, "gptq_weights": len(weights)}, [list(shape) for shape in shapes]
