"""This machine's GEMM ceilings: fp32 (torch matmul), int8 (ONNX Runtime MatMulInteger, u8 x s8) and, where
the CPU has bf16 (AVX512-BF16 or AMX), bf16 (torch matmul on bf16 tensors, oneDNN's bf16 kernels).

Both multiply two `n x n` matrices (`2 n^3` operations) with the default thread settings, as the
paths under test run; the best of a few runs is the ceiling. Run as a module it prints JSON, so the
benchmark measures it in a child process, between the paths, and keeps torch out of its own process:

    python -m benchmarks.ceiling --size 2048
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import click
import numpy as np

from scorer.precision import cpu_info

DEFAULT_SIZE = 2048


def _best_seconds(step: Callable[[], object], repeats: int) -> float:
    step()  # warm-up: thread pools, weight pre-packing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def fp32_gemm_gflops(n: int = DEFAULT_SIZE, repeats: int = 5, dtype: str = "float32") -> float:
    """GFLOP/s of torch's `n x n x n` matmul in `dtype` (float32, or bfloat16 for the bf16 ceiling)."""
    import torch

    a, b = (torch.randn(n, n).to(getattr(torch, dtype)) for _ in range(2))
    return 2 * n**3 / _best_seconds(lambda: torch.matmul(a, b), repeats) / 1e9


def matmul_integer_model(n: int, seed: int = 0) -> bytes:
    """A one-node ONNX graph: `MatMulInteger(A: uint8 [n, n] input, B: int8 [n, n] constant, a_zero_point)`,
    the op dynamic int8 quantization emits for a linear layer (constant weights, as in the model).

    The weights are 7-bit (`reduce_range`, as `scorer export` quantizes): with full-range s8 weights
    the AVX2 u8 x s8 kernel (VPMADDUBSW, int16 pair sums) saturates and returns wrong products on
    this CPU; the speed is the same either way."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.integers(-64, 64, (n, n), dtype=np.int8), "B")
    zero_point = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero_point")
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zero_point"], ["Y"])
    graph = helper.make_graph(
        [node],
        "matmul_integer",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
        [weights, zero_point],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def int8_gemm_gops(n: int = DEFAULT_SIZE, repeats: int = 5) -> float:
    """GOP/s of ONNX Runtime's MatMulInteger (u8 activations x s8 weights), `n x n x n`, CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(matmul_integer_model(n), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).integers(0, 256, (n, n), dtype=np.uint8)
    return 2 * n**3 / _best_seconds(lambda: session.run(None, {"A": a}), repeats) / 1e9


def measure(n: int = DEFAULT_SIZE, repeats: int = 5) -> dict[str, float]:
    """The ceilings, in G(FL)OP/s: fp32 and int8 always, bf16 where the CPU has bf16 instructions (elsewhere
    torch emulates bf16, and no bf16 path runs)."""
    ceilings = {"fp32_gflops": fp32_gemm_gflops(n, repeats), "int8_gops": int8_gemm_gops(n, repeats), "size": n}
    if cpu_info().has_bf16:
        ceilings["bf16_gflops"] = fp32_gemm_gflops(n, repeats, "bfloat16")
    return ceilings


@click.command()
@click.option("--size", type=click.IntRange(min=16), default=DEFAULT_SIZE, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True)
def main(size: int, repeats: int) -> None:
    """Print this machine's GEMM ceilings as JSON."""
    click.echo(json.dumps(measure(size, repeats)))


if __name__ == "__main__":
    main()
