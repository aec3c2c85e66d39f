"""The parity gate: one implementation, used by `scorer export` (before writing) and `scorer verify`.

Each variant's scores are compared with `CrossEncoder.predict` on the same pairs. fp32 must match
closely; int8, fp16 and bf16 must keep the ranking (Spearman) and the dedup decisions (flips at the
threshold), which is what users feel. Figures measured on the CPU record its model and flags: bf16
numerics depend on the CPU's bf16 instructions (AVX512-BF16, AMX).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scorer.metrics import decision_flips, spearman
from scorer.pipeline import LoadedModel
from scorer.precision import cpu_info
from scorer.session import CPU, CUDA, cuda_available


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


def measure(reference: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Parity figures of `scores` against the torch reference."""
    reference = np.asarray(reference, np.float64)
    scores = np.asarray(scores, np.float64)
    finite = bool(np.isfinite(scores).all())
    diff = np.abs(reference - scores) if finite else np.array([np.inf])
    flips = decision_flips(reference, scores, threshold) if finite else len(scores)
    return {
        "pairs": len(scores),
        "all_finite": finite,
        "max_abs_diff": float(diff.max(initial=0.0)),
        "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
        "spearman": spearman(reference, scores) if finite else 0.0,
        "flips": flips,
        "flip_rate": flips / max(len(scores), 1),
        "threshold": threshold,
    }


def failures(precision: str, parity: dict[str, Any], gates: Gates) -> list[str]:
    """Why `parity` fails its gate (empty when it passes)."""
    problems = [] if parity["all_finite"] else ["non-finite scores"]
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

    fp16 runs on CUDA where present; elsewhere on the CPU provider, recorded as not validated on a GPU.
    A variant whose recipe names OpenVINO (bf16) runs there, on this CPU.
    """
    provider = CUDA if precision == "fp16" and cuda_available() else CPU
    model = LoadedModel.load(directory, precision, provider=provider)
    parity = measure(reference, model.score(queries, candidates), gates.threshold)
    problems = failures(precision, parity, gates)
    parity.update(device="cuda" if provider == CUDA else "cpu", passed=not problems, failures=problems)
    if provider == CPU:
        parity.update(runtime=model.onnx.provider, cpu=cpu_info().describe())
    if precision == "fp16":
        parity["validated_on_gpu"] = provider == CUDA
    return parity
