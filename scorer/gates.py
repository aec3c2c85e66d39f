"""The parity gate's limits and verdict: one rule for `scorer export`, `scorer verify` and `--precision auto`.

fp32 must match its reference closely; int8, fp16 and bf16 must keep the ranking (Spearman) and the dedup
decisions (flips at the threshold), which is what users feel. A variant is held to the gate its entry in `scorer.variants` names (`gated_as`), e.g. int8-openvino to int8's; another
precision's limits. The figures are `scorer.metrics.parity`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from scorer.variants import VARIANTS

BUILTIN_PAIRS = 1000
BUILTIN_SEED = 20261126
RECORDS = 0.25  # share of whole-record queries (and their candidates) among the built-in pairs


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

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Gates:
        """The gates a manifest records (defaults for any limit it lacks)."""
        names = {field.name for field in fields(cls)}
        return cls(**{name: float(value) for name, value in recorded.items() if name in names})


def failures(precision: str, parity: dict[str, Any], gates: Gates) -> list[str]:
    """Why `parity` fails its gate (empty when it passes).

    >>> failures("int8", {"all_finite": True, "spearman": 0.5, "flips": 0, "flip_rate": 0.0}, Gates())
    ['spearman 0.5000 < 0.99']
    """
    problems = [] if parity["all_finite"] else ["non-finite scores"]
    precision = VARIANTS[precision].gated_as if precision in VARIANTS else precision
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


def builtin_pairs(seed: int = BUILTIN_SEED) -> tuple[list[str], list[str]]:
    """The built-in gate pairs (`export.calibration` says how they are made): (queries, candidates)."""
    from samples.catalogue import sample_pairs

    table = sample_pairs(BUILTIN_PAIRS, seed, RECORDS)
    return table["query"].to_pylist(), table["candidate"].to_pylist()
