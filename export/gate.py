"""The parity gate: one implementation, used by `scorer export` (before writing) and `scorer verify`.

Each variant's scores are compared with `CrossEncoder.predict` on the same pairs. fp32 must match
closely; int8, fp16 and bf16 must keep the ranking (Spearman) and the dedup decisions (flips at the
threshold), which is what users feel. Figures measured on the CPU record its model and flags: bf16
numerics depend on the CPU's bf16 instructions (AVX512-BF16, AMX). fp16 is gated on CUDA where a GPU is
present (`validated_on_gpu` true, with the GPU model), else on the CPU provider (`validated_on_gpu` false).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorer.artifact import GATED_AS
from scorer.metrics import parity as parity_figures
from scorer.model import LoadedModel
from scorer.precision import cpu_info
from scorer.session import CPU, CUDA, cuda_available, gpu_name


@dataclass(frozen=True)
class Gates:
    """Limits per precision; flags can tighten or loosen them and the manifest records those used."""

    threshold: float = 0.5
    fp32_max_abs_diff: float = 1e-4
    int8_min_spearman: float = 0.99
    int8_max_flip_rate: float = 0.005
    fp16_min_spearman: float = 0.995
    fp16_max_flip_rate: float = 0.005
    bf16_min_spearman: float = 0.99
    bf16_max_flip_rate: float = 0.005

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def failures(precision: str, parity: dict[str, Any], gates: Gates) -> list[str]:
    """Why `parity` fails its gate (empty when it passes)."""
    problems = [] if parity["all_finite"] else ["non-finite scores"]
    precision = GATED_AS.get(precision, precision)
    if precision == "fp32" and parity["max_abs_diff"] > gates.fp32_max_abs_diff:
        problems.append(f"max abs diff {parity['max_abs_diff']:.2e} > {gates.fp32_max_abs_diff:.0e}")
    if hasattr(gates, f"{precision}_min_spearman"):
        min_spearman = getattr(gates, f"{precision}_min_spearman")
        max_flip_rate = getattr(gates, f"{precision}_max_flip_rate")
        if parity["spearman"] < min_spearman:
            problems.append(f"spearman {parity['spearman']:.4f} < {min_spearman}")
        if parity["flip_rate"] > max_flip_rate:
            problems.append(
                f"{parity['flips']} decision flips at {gates.threshold} "
                f"({parity['flip_rate']:.2%} > {max_flip_rate:.2%})"
            )
    return problems


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
    return CUDA if precision == "fp16" and cuda else CPU


def device_record(provider: str, runtime: str, gpu: str | None = None) -> dict[str, Any]:
    """What the manifest records about the device a gate ran on: the GPU model on CUDA (asked of
    nvidia-smi unless given), the runtime and the CPU's model and flags elsewhere."""
    if provider == CUDA:
        return {"runtime": runtime, "gpu": gpu or gpu_name() or "unknown NVIDIA GPU"}
    return {"runtime": runtime, "cpu": cpu_info().describe()}
