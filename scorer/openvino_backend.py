"""The OpenVINO runtime over the artifact's own `model.fp32.onnx`: the bf16 CPU path.

OpenVINO reads the ONNX file directly (ONNX Runtime's fused ops included) and runs it in the inference
precision asked for; the same `logits(feeds)` contract as `scorer.session.OnnxModel`, so tokenizer,
windows and padding-aware batches stay one implementation. `openvino` is imported only here, on load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorer.errors import InputError
from scorer.session import default_threads

OPENVINO = "openvino"  # a variant's `recipe.runtime` that selects this backend
# The manifest's `inference_precision` -> OpenVINO's element type for INFERENCE_PRECISION_HINT.
OV_PRECISIONS = {"bf16": "bf16", "fp32": "f32"}


# OpenVINO 2026.4 CPU (bf16, two streams) computes int8-weight MatMuls wrong in some compilations for shapes
# outside these bounds; measured with benchmarks/results/int8-openvino-small/repro.py (README there).
MIN_INT8_CHANNELS = 64
INT8_CHANNEL_MULTIPLE = 32


def untrusted_int8_shapes(shapes: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    """The int8 weight shapes [input channels, outputs] that OpenVINO's CPU plugin cannot be trusted with.

    >>> untrusted_int8_shapes([[384, 1536], [1536, 384], [32, 32], [48, 384], [384, 1]])
    [(32, 32), (48, 384), (384, 1)]
    """
    return sorted({(int(k), int(n)) for k, n in shapes if min(k, n) < MIN_INT8_CHANNELS or k % INT8_CHANNEL_MULTIPLE})


def openvino_available() -> bool:
    """Whether the `openvino` package can be imported here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class OpenVinoModel:
    """A compiled OpenVINO model on the CPU, fed with padded int64 batches, returning float32 logits."""

    requests: list[Any]  # openvino.InferRequest, one per stream
    provider: str
    input_names: list[str]
    threads: int

    @classmethod
    def load(
        cls,
        path: Path,
        inference_precision: str = "bf16",
        threads: int | None = None,
        quantization_group: int | None = None,
    ) -> OpenVinoModel:
        """Compile `path` for the CPU in `inference_precision` (bf16 or fp32) with the throughput hint: one
        request per stream, each on its own threads. Measured on 2 AMD EPYC cores (trained MiniLM, 1916 pairs,
        8 alternated rounds): 1.07x one 2-thread request (latency hint) in quiet rounds, ~2x in rounds where
        another process took a core, bit-identical scores. `quantization_group`: for a graph of int8 weights,
        OpenVINO quantizes MatMul inputs on the fly, one scale per this many channels of a token."""
        if inference_precision not in OV_PRECISIONS:
            raise InputError(f"{path}: unknown OpenVINO inference precision {inference_precision!r}")
        try:
            import openvino as ov
        except ImportError:
            raise InputError(
                f"the {inference_precision} variant runs on OpenVINO: install it (pip install 'product-scorer[cpu]')"
            ) from None
        threads = threads or default_threads()
        config = {
            "INFERENCE_PRECISION_HINT": OV_PRECISIONS[inference_precision],
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": threads,
        }
        if quantization_group:
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = quantization_group
        core = ov.Core()
        try:
            compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except RuntimeError as exc:
            raise InputError(f"{path}: OpenVINO cannot load this model ({str(exc).splitlines()[0]})") from None
        actual = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if actual != OV_PRECISIONS[inference_precision]:
            raise InputError(f"OpenVINO runs {actual} on this CPU, not {inference_precision}: the CPU lacks it")
        names = [port.get_any_name() for port in compiled.inputs]
        requests = [compiled.create_infer_request() for _ in range(compiled.get_property("NUM_STREAMS"))]
        return cls(requests, f"OpenVINO CPU {inference_precision}", names, threads)

    def logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one batch, its rows cut into one contiguous part per stream, run in parallel (the cut depends
        only on the batch and the stream count, so a rerun here gives the same bits); one float32 logit per row."""
        rows = len(feeds["input_ids"])
        bounds = np.linspace(0, rows, min(len(self.requests), rows) + 1).astype(int)
        running = self.requests[: len(bounds) - 1]
        for request, start, stop in zip(running, bounds[:-1], bounds[1:], strict=True):
            request.start_async({name: feeds[name][start:stop] for name in self.input_names})
        parts = []
        for request, start, stop in zip(running, bounds[:-1], bounds[1:], strict=True):
            request.wait()
            parts.append(np.asarray(request.get_output_tensor(0).data, np.float32).reshape(stop - start, -1)[:, 0])
        return np.concatenate(parts) if parts else np.empty(0, np.float32)
