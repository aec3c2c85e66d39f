"""The parity gate: one implementation, used by `scorer export` (before writing) and `scorer verify`.

Each variant's scores are compared with `CrossEncoder.predict` on the same pairs, under the limits and
rule of `scorer.gates` (which `--precision auto` applies too). Figures measured on the CPU record its model
and flags: bf16 numerics depend on the CPU's bf16 instructions (AVX512-BF16, AMX). fp16 is gated on CUDA where a GPU is
present (`validated_on_gpu` true, with the GPU model), else on the CPU provider (`validated_on_gpu` false).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scorer.gates import Gates, failures
from scorer.metrics import parity as parity_figures
from scorer.model import LoadedModel
from scorer.precision import cpu_info
from scorer.session import CPU, CUDA, cuda_available, gpu_name
from scorer.variants import VARIANTS


def check_variant(
    directory: Path,
    precision: str,
    reference: np.ndarray,
    queries: list[str],
    candidates: list[str],
    gates: Gates,
) -> dict[str, Any]:
    """Score the pairs with one variant of the artifact in `directory` through the `scorer run` path
    (same tokenizer, windows and batches) and return its parity figures with the gate's verdict.

    fp16 runs on CUDA where present, with CUDA's batching (budget, multiple-of-8 padding), as `scorer
    run` will; elsewhere on the CPU provider, recorded as not validated on a GPU. A variant whose recipe
    names OpenVINO (bf16) runs there, on this CPU.
    """
    provider = gate_provider(precision, cuda_available())
    model = LoadedModel.load(directory, precision, provider=provider)
    parity: dict[str, Any] = parity_figures(reference, model.score(queries, candidates), gates.threshold)
    problems = failures(precision, parity, gates)
    parity.update(device="cuda" if provider == CUDA else "cpu", passed=not problems, failures=problems)
    parity.update(device_record(provider, model.onnx.provider))
    if precision == "fp16":
        parity["validated_on_gpu"] = provider == CUDA
    return parity


def gate_provider(precision: str, cuda: bool) -> str:
    """Where a variant is gated: fp16 on CUDA when there is one, everything else on the CPU (int8 and bf16
    are CPU variants; fp32 is the reference, checked where its numerics are exact).

    >>> gate_provider("fp16", True), gate_provider("fp16", False), gate_provider("fp32", True)
    ('CUDAExecutionProvider', 'CPUExecutionProvider', 'CPUExecutionProvider')
    """
    return CUDA if VARIANTS[precision].needs == "cuda" and cuda else CPU


def device_record(provider: str, runtime: str, gpu: str | None = None) -> dict[str, Any]:
    """What the manifest records about the device a gate ran on: the GPU model on CUDA (asked of
    nvidia-smi unless given), the runtime and the CPU's model and flags elsewhere."""
    if provider == CUDA:
        return {"runtime": runtime, "gpu": gpu or gpu_name() or "unknown NVIDIA GPU"}
    return {"runtime": runtime, "cpu": cpu_info().describe()}
