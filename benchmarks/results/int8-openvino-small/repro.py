"""Minimal reproduction, outside the project: OpenVINO's CPU plugin returns wrong values for a MatMul of int8
compressed weights (DequantizeLinear, one scale per output column) with few input channels, in bf16 with two
streams, in some compilations. Needs only numpy, onnx and openvino.

    python benchmarks/results/int8-openvino-small/repro.py [--trials 20]

Each trial compiles a fresh model (bf16 inference precision, NUM_STREAMS 2, 2 threads) and runs one
[4, 16, input channels] input twice; an output is wrong when it is off by more than 5% of the largest |reference|.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# [input channels, outputs]: the tiny test BERT's (32, 64), odd multiples of 16, one output, MiniLM's and
# mmBERT-small's
SHAPES = ((16, 64), (32, 32), (32, 64), (48, 64), (64, 64), (80, 64), (112, 64), (128, 128), (384, 1), (384, 384))
SHAPES += ((384, 1152), (384, 1536), (1152, 384), (1536, 384))


def model_bytes(channels: int, outputs: int) -> tuple[bytes, np.ndarray]:
    """One MatMul, x [b, t, channels] @ DequantizeLinear(int8 [channels, outputs], scale [outputs])."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 128, size=(channels, outputs)).astype(np.int8)
    scales = ((rng.random(outputs) + 0.5) / 127).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["w", "s"], ["wd"], axis=1),
            helper.make_node("MatMul", ["x", "wd"], ["y"]),
        ],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "t", outputs])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(scales, "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), weights.astype(np.float32) * scales


def wrong_compilations(channels: int, outputs: int, trials: int, streams: int, precision: str) -> int:
    import openvino as ov

    core, wrong = ov.Core(), 0
    for trial in range(trials):
        serialized, dequantized = model_bytes(channels, outputs)
        config = {"NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": 2, "INFERENCE_PRECISION_HINT": precision}
        compiled = core.compile_model(core.read_model(model=serialized), "CPU", config)
        x = np.random.default_rng(trial).standard_normal((4, 16, channels)).astype(np.float32)
        reference = x @ dequantized
        results = [compiled(x)[0] for _ in range(2)]
        wrong += any((np.abs(y - reference) > 0.05 * np.abs(reference).max()).any() for y in results)
    return wrong


def main() -> None:
    import openvino as ov

    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    trials = parser.parse_args().trials
    flags = Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0]
    print(f"openvino {ov.__version__}; amx_int8 {'amx_int8' in flags}, avx512_bf16 {'avx512_bf16' in flags}")
    print("| input channels | outputs | bf16, 2 streams | bf16, 1 stream | f32, 2 streams |")
    print("|---:|---:|---:|---:|---:|")
    for channels, outputs in SHAPES:
        cells = [wrong_compilations(channels, outputs, trials, s, p) for s, p in ((2, "bf16"), (1, "bf16"), (2, "f32"))]
        print(f"| {channels} | {outputs} | " + " | ".join(f"{c}/{trials}" for c in cells) + " |")


if __name__ == "__main__":
    main()
