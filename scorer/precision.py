"""Which variant a run uses: `--precision auto` is the fastest variant whose gate passed, on this machine.

On CUDA, auto is fp16 (int8 on a GPU is ~10x slower). On the CPU the candidates are the variants whose
export gate passed and that this machine can run (bf16, and int8-openvino gated with bf16 elsewhere in the
graph, need AVX512-BF16 or AMX and the `openvino` package; fp16 needs CUDA), fp32 (ONNX Runtime's, or
OpenVINO's `fp32-openvino`) only when no other is left. Speed alone never decides:
- an OpenVINO variant gated at export on another CPU model is gated again here, on the built-in gate pairs
  against the fp32 graph (its kernels differ by CPU), once per CPU model and artifact;
- the probe scores the run's first pairs with fp32 and every candidate, leaves out each candidate whose scores
  break its gate there, and times the others.
The decision is cached per CPU model, thread count and artifact (the manifest's sha256) in the user's cache
directory, never in the artifact, so later runs on the same machine choose the same variant without probing.
The choice is made once, before scoring, and is part of the run's fingerprint: a resumed run scores with the
same variant.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scorer.artifact import MANIFEST_NAME, Manifest, Variant, load_manifest, sha256_file
from scorer.errors import InputError
from scorer.gates import Gates, builtin_pairs, failures
from scorer.metrics import parity
from scorer.model import DEFAULT_BATCH_TOKENS, LoadedModel
from scorer.openvino_backend import (
    INT8_CHANNEL_MULTIPLE,
    MIN_INT8_CHANNELS,
    OPENVINO,
    openvino_available,
    untrusted_int8_shapes,
)
from scorer.paths import cache_dir as product_cache
from scorer.session import cuda_available, default_threads
from scorer.variants import FULL_PRECISION, VARIANTS

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
CACHE_FILE = "precision.json"
FP32_FALLBACK = "fp32 runs only when no faster variant passed its gate"
PROBE_ROUNDS = 2  # timed rounds at most, after a warm-up round
CLEAR_LEAD = 1.15  # the probe stops after a timed round where the fastest leads every other by this factor
# The probe times the run's own first pairs: speed depends on their shapes, and synthetic short titles once chose
# a variant that was slower on the real pairs. Synthetic titles remain for an input with no pairs.
PROBE_PAIRS = 256
PROBE_VERSION = 3  # 1: the 32 synthetic titles; 2: timing only, no agreement with fp32
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
        group = variant.recipe.get("quantization_group")
        shapes = variant.recipe.get("int8_weight_shapes") or ([[group, group]] if isinstance(group, int) else [])
        untrusted = untrusted_int8_shapes(shapes)
        if untrusted:
            return (
                f"OpenVINO computes int8-weight MatMuls of shape {untrusted[0]} wrong in some compilations here "
                f"(needs at least {MIN_INT8_CHANNELS} input channels and outputs, input channels a multiple of "
                f"{INT8_CHANNEL_MULTIPLE})"
            )
    if precision in VARIANTS and VARIANTS[precision].needs == "cuda" and not cuda_available():
        return f"{precision} needs CUDA"
    return None


@dataclass
class Choice:
    """The variant a run uses, and why; `agreement`: each probed variant's parity with fp32 on the probe's pairs,
    `regated`: the parity of OpenVINO variants gated at export on another CPU model, measured here."""

    requested: str
    precision: str
    reason: str
    probe_pairs_per_s: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)
    agreement: dict[str, dict[str, Any]] = field(default_factory=dict)
    regated: dict[str, dict[str, Any]] = field(default_factory=dict)
    usable: list[str] = field(default_factory=list)  # auto: every variant that passed here, fastest or not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def preferring(self, precision: str | None) -> Choice:
        """This choice, or `precision` instead where auto found it usable here: the variant of the outputs a run
        reuses, so that a night reuses its scores although another variant would be faster."""
        if precision is None or precision == self.precision or precision not in self.usable:
            return self
        reason = (
            f"the variant of the --reuse outputs, which passed here (auto's own pick: {self.precision}; {self.reason})"
        )
        return dataclasses.replace(self, precision=precision, reason=reason)


@dataclass
class ProbeResult:
    """What a probe measured: pairs/s of the variants that agree with fp32, and every variant's agreement."""

    rates: dict[str, float]
    agreement: dict[str, dict[str, Any]]


class Probe(Protocol):
    """Measures variants on this machine (`TimedProbe`; tests pass fakes)."""

    def __call__(self, precisions: list[str]) -> ProbeResult:
        """Score the run's first pairs with fp32 and each variant; time the variants that pass their gate."""

    def regate(self, precision: str) -> dict[str, Any]:
        """The parity of `precision` against fp32 on the built-in gate pairs, with `passed` and `failures`."""


def candidates(manifest: Manifest, cpu: CpuInfo) -> tuple[list[str], dict[str, str]]:
    """Variants that passed their gate at export and that this machine runs, and why every other one is out."""
    runnable, left_out = [], {}
    for precision, variant in manifest.variants.items():
        reason = unavailable_reason(variant, precision, cpu)
        if variant.parity.get("passed") is not True:
            reason = "its gate failed at export: " + "; ".join(variant.parity.get("failures") or ["no parity"])
        if reason:
            left_out[precision] = reason
        else:
            runnable.append(precision)
    return runnable, left_out


def gated_elsewhere(manifest: Manifest, precision: str, cpu: CpuInfo) -> str | None:
    """The CPU model an OpenVINO variant was gated on at export, when it is not this one (None otherwise):
    OpenVINO's kernels differ by CPU (bf16, VNNI, AMX), so its gate holds only where it was measured."""
    variant = manifest.variants[precision]
    gated_on = str(variant.parity.get("cpu", {}).get("model", "an unrecorded CPU"))
    return gated_on if variant.recipe.get("runtime") == OPENVINO and gated_on != cpu.model else None


def _figures(parity: dict[str, Any]) -> str:
    return f"spearman {parity['spearman']:.4f}, {parity['flips']} flips in {parity['pairs']}"


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
    """The fastest variant that passed its gate (again here, for OpenVINO variants gated on another CPU model),
    runs here, and agrees with fp32 on the probe's pairs: a cached decision, or the probe's."""
    runnable, left_out = candidates(manifest, cpu)
    entries = _read_cache(cache)
    regated: dict[str, dict[str, Any]] = {}
    for precision in [p for p in runnable if gated_elsewhere(manifest, p, cpu)]:
        regate_key = f"{key}|regate {precision}"
        cached_regate = entries.get(regate_key)
        if not _valid_verdict(cached_regate):
            cached_regate = entries[regate_key] = probe.regate(precision)
            _write_cache(cache, entries)
        regated[precision] = cached_regate
        if cached_regate["failures"]:
            runnable.remove(precision)
            left_out[precision] = (
                f"gated at export on {gated_elsewhere(manifest, precision, cpu)}, it fails its gate on this CPU "
                f"({cpu.model}): {'; '.join(cached_regate['failures'])}"
            )
    if not runnable:
        raise InputError(f"no variant of this artifact passed its gate and runs here: {left_out}")
    faster = [p for p in runnable if p not in FULL_PRECISION]
    for precision in FULL_PRECISION if faster else ():
        if precision in runnable:
            left_out[precision] = FP32_FALLBACK
    eligible = faster or runnable
    if eligible == ["fp32"]:
        reason = f"the only gated variant this machine runs{_note(left_out)}"
        return Choice("auto", "fp32", reason, cpu=cpu.describe(), usable=runnable)
    cached = entries.get(key)
    if _valid_decision(cached, eligible):
        _leave_out_disagreeing(left_out, cached["agreement"])
        rates = cached["probe_pairs_per_s"]
        reason = f"cached probe of {cached.get('measured', '?')} on this CPU: {_rates(rates)}{_note(left_out)}"
        usable = _usable(runnable, cached["agreement"])
        return Choice("auto", cached["precision"], reason, rates, cpu.describe(), cached["agreement"], regated, usable)
    result = probe(eligible)
    _leave_out_disagreeing(left_out, result.agreement)
    if not result.rates:
        reason = f"every faster variant disagrees with fp32 here{_note(left_out)}"
        return Choice(
            "auto", "fp32", reason, {}, cpu.describe(), result.agreement, regated, _usable(runnable, result.agreement)
        )
    best = max(result.rates, key=lambda p: result.rates[p])
    entries[key] = {
        "precision": best,
        "probe_pairs_per_s": result.rates,
        "agreement": result.agreement,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }
    _write_cache(cache, entries)
    what = "fastest in a timed probe" if len(result.rates) > 1 else "the only variant that agrees with fp32"
    reason = f"{what}: {_rates(result.rates)}{_note(left_out)}"
    usable = _usable(runnable, result.agreement)
    return Choice("auto", best, reason, result.rates, cpu.describe(), result.agreement, regated, usable)


def _usable(runnable: list[str], agreement: dict[str, dict[str, Any]]) -> list[str]:
    """The runnable variants that did not disagree with fp32 on the probe's pairs."""
    return [p for p in runnable if not agreement.get(p, {}).get("failures")]


def _leave_out_disagreeing(left_out: dict[str, str], agreement: dict[str, dict[str, Any]]) -> None:
    for precision, figures in agreement.items():
        if figures["failures"]:
            left_out[precision] = (
                f"disagrees with fp32 on the run's first pairs ({_figures(figures)}): {'; '.join(figures['failures'])}"
            )


def _valid_verdict(entry: Any) -> bool:
    """Whether a cached re-gate verdict can be read (a corrupt or hand-edited one is measured again).

    >>> _valid_verdict({"failures": []}), _valid_verdict({"failures": "none"}), _valid_verdict([])
    (True, False, False)
    """
    return isinstance(entry, dict) and isinstance(entry.get("failures"), list)


def _valid_decision(entry: Any, eligible: list[str]) -> bool:
    """Whether a cached decision names a candidate of this run and can be read (else the probe runs again).

    >>> _valid_decision({"precision": "int8", "probe_pairs_per_s": {"int8": 9.5}, "agreement": {}}, ["int8"])
    True
    >>> _valid_decision({"precision": "int8", "probe_pairs_per_s": {"int8": "fast"}, "agreement": {}}, ["int8"])
    False
    """
    if not isinstance(entry, dict) or entry.get("precision") not in eligible:
        return False
    rates = entry.get("probe_pairs_per_s")
    numbers = isinstance(rates, dict) and all(type(r) in (int, float) for r in rates.values())
    return numbers and isinstance(entry.get("agreement"), dict)


def _note(left_out: dict[str, str]) -> str:
    excluded = "; ".join(f"{p} left out: {why}" for p, why in left_out.items())
    return f" ({excluded})" if excluded else ""


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
    """A probe that loads fp32 and each variant, scores `sample()`'s pairs (the run's first ones) through the
    `scorer run` path, and leaves out every variant whose scores break its gate against fp32's there (Spearman,
    flips at the gate's threshold). The others are timed, alternating, for up to PROBE_ROUNDS rounds after the
    scoring round, which warms them up (fewer once one leads by CLEAR_LEAD: a close call gets more time); each
    variant's best round counts. It keeps the variants it loaded, so the run takes the winner's (loaded and warm)
    instead of loading it again."""

    def __init__(self, artifact: Path, threads: int | None, sample: Sample) -> None:
        self.artifact, self.threads, self.sample = artifact, threads, sample
        self.loaded: dict[str, LoadedModel] = {}

    def __call__(self, precisions: list[str]) -> ProbeResult:
        queries, others = self.sample()
        if not queries:
            queries, others = synthetic_pairs()
        self.loaded = {
            p: LoadedModel.load(self.artifact, p, self.threads) for p in dict.fromkeys(["fp32", *precisions])
        }
        reference = self.loaded["fp32"]
        encoded = reference.tokenizer.encode(queries, others)
        expected = reference.score_encoded(encoded, DEFAULT_BATCH_TOKENS)[0]
        gates = Gates.from_dict(reference.manifest.gates)
        agreement, warm = {}, {}
        for precision in precisions:  # the scoring round, which also warms each variant up
            start = time.perf_counter()
            scores = self.loaded[precision].score_encoded(encoded, DEFAULT_BATCH_TOKENS)[0]
            warm[precision] = len(queries) / (time.perf_counter() - start)
            agreement[precision] = _verdict(precision, parity(expected, scores, gates.threshold), gates)
        agreed = [p for p in precisions if not agreement[p]["failures"]]
        best: dict[str, float] = {}
        for _ in range(PROBE_ROUNDS if len(agreed) > 1 else 0):
            for precision in agreed:
                start = time.perf_counter()
                self.loaded[precision].score_encoded(encoded, DEFAULT_BATCH_TOKENS)
                best[precision] = max(best.get(precision, 0.0), len(queries) / (time.perf_counter() - start))
            if clear_lead(best):
                break
        return ProbeResult(best or {p: warm[p] for p in agreed}, agreement)

    @cached_property
    def _builtin_reference(self) -> tuple[list[str], list[str], np.ndarray, Gates]:
        """The built-in gate pairs, fp32's scores of them and the artifact's gates: computed once however many
        variants are re-gated."""
        queries, candidates = builtin_pairs()
        reference = LoadedModel.load(self.artifact, "fp32", self.threads)
        return queries, candidates, reference.score(queries, candidates), Gates.from_dict(reference.manifest.gates)

    def regate(self, precision: str) -> dict[str, Any]:
        queries, candidates, expected, gates = self._builtin_reference
        scores = LoadedModel.load(self.artifact, precision, self.threads).score(queries, candidates)
        return _verdict(precision, parity(expected, scores, gates.threshold), gates)

    def take(self, precision: str) -> LoadedModel | None:
        """The loaded `precision` if the probe ran it (the others are released), else None."""
        model, self.loaded = self.loaded.get(precision), {}
        return model


def _verdict(precision: str, figures: dict[str, Any], gates: Gates) -> dict[str, Any]:
    return {**figures, "failures": failures(precision, figures, gates)}


def choose(
    requested: str,
    artifact: Path,
    threads: int | None = None,
    probe: Probe | None = None,
    cache_dir: Path | None = None,
    prefer: str | None = None,
) -> Choice:
    """The variant `scorer run --precision REQUESTED` uses: an explicit one after checking it may run
    here (gate passed, hardware present), or auto's choice (`probe`, by default timing synthetic pairs), which
    takes `prefer` (the variant of the outputs the run reuses) instead where that passed here too."""
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
            elsewhere = gated_elsewhere(manifest, requested, cpu)
            if elsewhere:
                warning = (
                    f"--precision given; warning: {requested} was gated on {elsewhere}, not on this CPU "
                    f"({cpu.model}), whose kernels differ: `scorer verify` re-checks it here, auto re-gates it"
                )
                return Choice(requested, requested, warning, cpu=cpu.describe())
        return Choice(requested, requested, "--precision given", cpu=cpu.describe())
    if cuda_available():
        return Choice("auto", "fp16", "CUDA present: fp16 (int8 on a GPU is ~10x slower)")
    key = cache_key(cpu, threads or default_threads(), sha256_file(Path(artifact) / MANIFEST_NAME))
    cache = (cache_dir or product_cache()) / CACHE_FILE
    choice = choose_cpu(manifest, key, cpu, probe or TimedProbe(artifact, threads, synthetic_pairs), cache)
    return choice.preferring(prefer)
