"""Which variant a run uses: `--precision auto` is the fastest variant whose gate passed, on this machine.

On CUDA, auto is fp16 (int8 on a GPU is ~10x slower). On the CPU the candidates are the variants whose
export gate passed and that this machine can run (bf16, and int8-openvino gated with bf16 elsewhere in the
graph, need AVX512-BF16 or AMX and the `openvino` package; fp16 needs CUDA), fp32 (ONNX Runtime's, or OpenVINO's `fp32-openvino`) only when no other is left.
With more than one, a short timed probe decides; the decision is cached per
CPU model, thread count and artifact (the manifest's sha256) in the user's cache directory, never in the
artifact, so later runs on the same machine choose the same variant without probing. The choice is made
once, before scoring, and is part of the run's fingerprint: a resumed run scores with the same variant.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scorer.artifact import MANIFEST_NAME, Manifest, Variant, load_manifest, sha256_file
from scorer.errors import InputError
from scorer.model import DEFAULT_BATCH_TOKENS, LoadedModel
from scorer.openvino_backend import OPENVINO, openvino_available
from scorer.session import cuda_available, default_threads

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
CACHE_FILE = "precision.json"
# Measured: ONNX Runtime fp32 ran at 0.42x (MiniLM) and 0.49x (mmBERT-small) int8 on AMD EPYC, 0.70x on an AMX Xeon.
FP32_FALLBACK = "fp32 runs only when no faster variant passed its gate"
FP32_VARIANTS = ("fp32", "fp32-openvino")  # ONNX Runtime's and OpenVINO's: the probe picks between them
PROBE_ROUNDS = 2  # timed rounds at most, after a warm-up round
CLEAR_LEAD = 1.15  # the probe stops after a timed round where the fastest leads every other by this factor
# The probe times the run's own first pairs (speed depends on their shapes): 32 synthetic short titles chose
# int8 at 295 against bf16 263 pairs/s, where the run of 10k real pairs then took 47.8 s in int8 and 31.1 s in
# bf16 (MiniLM with layers 0-1 in fp32, AMD EPYC). Synthetic titles remain for an input with no pairs.
PROBE_PAIRS = 256
PROBE_VERSION = 2  # 1: the 32 synthetic titles
_PROBE_WORDS = "dark chocolate bar 70 % cacao coconut usb flash drive 32gb black sony headphones wireless a1186-001"


@dataclass(frozen=True)
class CpuInfo:
    """The CPU model and the instruction-set flags that decide which paths are fast here."""

    model: str
    flags: frozenset[str]

    @property
    def has_bf16(self) -> bool:
        return any(flag in self.flags for flag in BF16_FLAGS)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "flags": sorted(self.flags & set(REPORTED_FLAGS))}


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's CPU, read from /proc/cpuinfo (model `unknown` and no flags elsewhere)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return CpuInfo("unknown", frozenset())
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return CpuInfo(fields.get("model name", "unknown"), frozenset(fields.get("flags", "").split()))


def unavailable_reason(variant: Variant, precision: str, cpu: CpuInfo) -> str | None:
    """Why this machine cannot run `variant` as gated (None when it can)."""
    if variant.recipe.get("runtime") == OPENVINO:
        if not openvino_available():
            return "the openvino package is not installed"
        if variant.recipe.get("inference_precision") == "bf16" and not cpu.has_bf16:
            return f"this CPU ({cpu.model}) has no bf16 (neither {' nor '.join(BF16_FLAGS)})"
    if precision == "fp16" and not cuda_available():
        return "fp16 needs CUDA"
    return None


@dataclass
class Choice:
    """The variant a run uses, and why."""

    requested: str
    precision: str
    reason: str
    probe_pairs_per_s: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A probe times the given precisions on this machine and returns pairs/s for each.
Probe = Callable[[list[str]], dict[str, float]]


def candidates(manifest: Manifest, cpu: CpuInfo) -> tuple[list[str], dict[str, str]]:
    """Variants auto may pick here (gate passed, runnable), and why every other one is left out."""
    eligible, left_out = [], {}
    for precision, variant in manifest.variants.items():
        reason = unavailable_reason(variant, precision, cpu)
        if variant.parity.get("passed") is not True:
            reason = "its gate failed at export: " + "; ".join(variant.parity.get("failures") or ["no parity"])
        if reason:
            left_out[precision] = reason
        else:
            eligible.append(precision)
    if any(precision not in FP32_VARIANTS for precision in eligible):
        for precision in [p for p in eligible if p in FP32_VARIANTS]:
            eligible.remove(precision)
            left_out[precision] = FP32_FALLBACK
    return eligible, left_out


def default_cache_dir() -> Path:
    """`$SCORER_CACHE_DIR`, else the user's cache (XDG), under `product-scorer`: never the artifact."""
    root = os.environ.get("SCORER_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "product-scorer"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    """Best effort and atomic: a cache that cannot be written only means probing again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def choose_cpu(manifest: Manifest, key: str, cpu: CpuInfo, probe: Probe, cache: Path) -> Choice:
    """The fastest gated variant this CPU runs: the only one, a cached decision, or the probe's."""
    eligible, left_out = candidates(manifest, cpu)
    if not eligible:
        raise InputError(f"no variant of this artifact passed its gate and runs here: {left_out}")
    excluded = "; ".join(f"{p} left out: {why}" for p, why in left_out.items())
    note = f" ({excluded})" if excluded else ""
    if len(eligible) == 1:
        return Choice("auto", eligible[0], f"the only gated variant this machine runs{note}", cpu=cpu.describe())
    entries = _read_cache(cache)
    cached = entries.get(key)
    if isinstance(cached, dict) and cached.get("precision") in eligible:
        rates = {p: float(r) for p, r in cached.get("probe_pairs_per_s", {}).items()}
        reason = f"cached probe of {cached.get('measured', '?')} on this CPU: {_rates(rates)}{note}"
        return Choice("auto", cached["precision"], reason, rates, cpu.describe())
    rates = probe(eligible)
    best = max(eligible, key=lambda p: rates[p])
    entries[key] = {"precision": best, "probe_pairs_per_s": rates, "measured": time.strftime("%Y-%m-%d %H:%M")}
    _write_cache(cache, entries)
    return Choice("auto", best, f"fastest in a timed probe: {_rates(rates)}{note}", rates, cpu.describe())


def _rates(rates: dict[str, float]) -> str:
    return ", ".join(f"{p} {r:,.0f} pairs/s" for p, r in sorted(rates.items(), key=lambda item: -item[1]))


def cache_key(cpu: CpuInfo, threads: int, manifest_sha256: str) -> str:
    """Per CPU model, threads, artifact and probe method (decisions of an older probe are not reused)."""
    return f"{cpu.model}|{threads} threads|{manifest_sha256}|probe {PROBE_VERSION}"


def synthetic_pairs(pairs: int = 32) -> tuple[list[str], list[str]]:
    """Title-like pairs, for a probe with no input pairs to time."""
    words = _PROBE_WORDS.split()
    queries = [" ".join(words[(i + j) % len(words)] for j in range(8 + i % 5)) for i in range(pairs)]
    others = [" ".join(words[(3 * i + j) % len(words)] for j in range(10 + i % 7)) for i in range(pairs)]
    return queries, others


Sample = Callable[[], tuple[list[str], list[str]]]  # the pairs a probe times, read only if it runs


def clear_lead(rates: dict[str, float]) -> bool:
    """Whether the fastest rate is at least CLEAR_LEAD times every other.

    >>> clear_lead({"bf16": 326.0, "int8": 242.0}), clear_lead({"bf16": 326.0, "int8": 300.0})
    (True, False)
    """
    first, *others = sorted(rates.values(), reverse=True)
    return all(first >= CLEAR_LEAD * other for other in others)


class TimedProbe:
    """A probe that loads each variant and scores `sample()`'s pairs (the run's first ones) through the
    `scorer run` path, after a warm-up, alternating the variants for up to PROBE_ROUNDS rounds (fewer once one
    leads by CLEAR_LEAD: a close call gets more time); each variant's best round counts.
    It keeps the variants it loaded, so the run takes the winner's (loaded and warm) instead of loading it again."""

    def __init__(self, artifact: Path, threads: int | None, sample: Sample) -> None:
        self.artifact, self.threads, self.sample = artifact, threads, sample
        self.loaded: dict[str, LoadedModel] = {}

    def __call__(self, precisions: list[str]) -> dict[str, float]:
        queries, others = self.sample()
        if not queries:
            queries, others = synthetic_pairs()
        pairs = len(queries)
        self.loaded = {p: LoadedModel.load(self.artifact, p, self.threads) for p in precisions}
        encoded = self.loaded[precisions[0]].tokenizer.encode(queries, others)
        best = dict.fromkeys(precisions, 0.0)
        for round_index in range(PROBE_ROUNDS + 1):  # round 0 warms up
            for precision, model in self.loaded.items():
                start = time.perf_counter()
                model.score_encoded(encoded, DEFAULT_BATCH_TOKENS)
                rate = pairs / (time.perf_counter() - start)
                best[precision] = max(best[precision], rate) if round_index else 0.0
            if round_index and clear_lead(best):
                break
        return best

    def take(self, precision: str) -> LoadedModel | None:
        """The loaded `precision` if the probe ran it (the others are released), else None."""
        model, self.loaded = self.loaded.get(precision), {}
        return model


def choose(
    requested: str,
    artifact: Path,
    threads: int | None = None,
    probe: Probe | None = None,
    cache_dir: Path | None = None,
) -> Choice:
    """The variant `scorer run --precision REQUESTED` uses: an explicit one after checking it may run
    here (gate passed, hardware present), or auto's choice (`probe`, by default timing synthetic pairs)."""
    manifest = load_manifest(artifact)
    cpu = cpu_info()
    if requested != "auto":
        if requested in manifest.variants:
            variant = manifest.variants[requested]
            if variant.parity.get("passed") is False:
                raise InputError(f"--precision {requested}: this variant failed its gate at export; re-export")
            reason = unavailable_reason(variant, requested, cpu)
            if reason:
                raise InputError(f"--precision {requested}: {reason}")
        return Choice(requested, requested, "--precision given", cpu=cpu.describe())
    if cuda_available():
        return Choice("auto", "fp16", "CUDA present: fp16 (int8 on a GPU is ~10x slower)")
    key = cache_key(cpu, threads or default_threads(), sha256_file(Path(artifact) / MANIFEST_NAME))
    cache = (cache_dir or default_cache_dir()) / CACHE_FILE
    return choose_cpu(manifest, key, cpu, probe or TimedProbe(artifact, threads, synthetic_pairs), cache)
