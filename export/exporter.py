"""`scorer export`: checkpoint -> ONNX graphs (fp32, int8, fp16; int8-openvino), tokenizer and manifest, each variant
proven against `CrossEncoder.predict` before the artifact appears (built in a temporary directory and
renamed into place only when every gate passes).

bf16 and fp32-openvino add no file: they are OpenVINO running `model.fp32.onnx` in bf16 (gated where this
CPU has bf16) and in f32 (faster than ONNX Runtime's fp32 on some CPUs: benchmarks/results/minilm-bf16).
int8-openvino is OpenVINO running `model.int8-openvino.onnx` (`export.openvino_int8`: int8
weights, activations quantized per token at run time; the rest in bf16 where this CPU has it, else f32).
Their gates are advisory: a failed one is recorded (and `--precision auto` never picks the variant) but does
not stop the artifact, whose ONNX Runtime variants are unaffected."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.cross_encoder import CrossEncoder
from tokenizers import Tokenizer

from export.calibration import fitting_pairs, length_mix
from export.fp16 import convert_fp16
from export.gate import check_variant
from export.onnx_graph import export_raw, fuse, input_names
from export.openvino_int8 import weight_only_int8
from export.quantize import Int8Recipe, encoder_layers, quantize_int8
from export.reference import activation_name, checkpoint_architecture, load_cross_encoder, reference_scores
from export.smoothing import ALPHA, Calibration
from scorer.artifact import MANIFEST_VERSION, Manifest, Variant, sha256_file
from scorer.batching import padded_batches
from scorer.errors import GateError
from scorer.gates import Gates
from scorer.paths import staged_directory
from scorer.precision import cpu_info, unavailable_reason
from scorer.tokenize import PairTokenizer
from scorer.variants import ADVISORY, PRECISIONS, VARIANTS
from scorer.versions import installed_versions

VERSIONED = (
    "onnxruntime",
    "onnx",
    "openvino",
    "torch",
    "transformers",
    "sentence-transformers",
    "optimum",
    "optimum-onnx",
)
# OpenVINO variants: their failed gate is recorded (auto never picks them) but does not stop the export
# every layer int8, calibrated: LayerNorm and FFN-out smoothing (alpha 0.5) and GPTQ weight rounding, fitted
# on pairs other than the gate's (benchmarks/results/int8-calibrated/notes.md: on the hard MiniLM case 8 (mixed)
# and 4 flips of 1000, where the plain schemes flipped 8 and 11); both schemes share one calibration
CALIBRATED = (
    Int8Recipe("per-token-mixed", smooth_alpha=ALPHA, rounding="gptq"),
    Int8Recipe("per-token", smooth_alpha=ALPHA, rounding="gptq"),
)


@dataclass
class ExportResult:
    """What was exported and measured; `manifest` is None when a gate failed."""

    manifest: Manifest | None
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    int8_attempts: list[dict[str, Any]] = field(default_factory=list)


def int8_recipes(layers: list[int], activations: str = "auto") -> list[Int8Recipe]:
    """Candidate int8 recipes, fastest first. auto: per-token (mixed, then asymmetric) everywhere, then
    per-token-mixed and per-token everywhere calibrated on built-in fitting pairs, never the gate's (smoothing of the LayerNorm
    and FFN-out outlier channels, GPTQ weight rounding: an elementwise Mul per smoothed site), then per-token with the
    first layers kept in fp32 one by one (where activation outliers live), up to half of the encoder: for
    each count, first only their feed-forward MatMuls (faster), then the whole layers.
    ONNX Runtime's per-tensor scheme is tried only when asked for: on trained product models it passes a
    0.5% flip gate only by chance (benchmarks/NOTES.md, section 12), so auto never starts with it. LayerNorm smoothing alone never
    turned a failing recipe into a passing one (benchmarks/results/int8-smoothquant/notes.md); with the
    FFN-out smoothing and GPTQ rounding it did (benchmarks/results/int8-calibrated/notes.md)."""
    if activations == "per-tensor":
        return [Int8Recipe("per-tensor")]
    kept = [
        Int8Recipe("per-token", tuple(layers[:k]), fp32_parts=parts)
        for k in range(1, len(layers) // 2 + 1)
        for parts in ("ffn", "layer")
    ]
    recipes = [Int8Recipe("per-token-mixed"), Int8Recipe("per-token"), *CALIBRATED, *kept]
    return [recipe for recipe in recipes if activations in ("auto", recipe.activations)]


class Exporter:
    """Builds an artifact in `staging`, scoring each variant against the torch reference."""

    def __init__(
        self,
        checkpoint: Path,
        staging: Path,
        gates: Gates,
        max_length: int | None,
        log: Callable[[str], None],
        int8_activations: str = "auto",
    ) -> None:
        self.checkpoint = checkpoint
        self.int8_activations = int8_activations
        self.staging = staging
        self.gates = gates
        self.log = log
        self.architecture = checkpoint_architecture(checkpoint)
        self.model = load_cross_encoder(checkpoint, max_length)
        self.max_length = int(self.model.max_length)
        self.manifest: Manifest | None = None
        self._fitting: list[dict[str, np.ndarray]] | None = None
        self._calibrations: dict[tuple, Calibration] = {}  # shared by the int8 recipes and int8-openvino

    def reference(self, queries: list[str], candidates: list[str]) -> np.ndarray:
        self.log(f"torch reference: CrossEncoder.predict on {len(queries)} calibration pairs")
        return reference_scores(self.model, queries, candidates)

    def _add_variant(self, precision: str, path: Path, recipe: dict[str, Any]) -> None:
        assert self.manifest is not None
        self.manifest.variants[precision] = Variant(path.name, sha256_file(path), recipe=recipe)
        self.manifest.write(self.staging)

    def _check(self, precision: str, reference: np.ndarray, queries: list[str], candidates: list[str]) -> dict:
        parity = check_variant(self.staging, precision, reference, queries, candidates, self.gates)
        self.log(
            f"  {precision}: max abs diff {parity['max_abs_diff']:.2e}, spearman {parity['spearman']:.5f}, "
            f"flips {parity['flips']}/{parity['pairs']} on {parity['device']}"
            + ("" if parity["passed"] else f"  FAILED: {'; '.join(parity['failures'])}")
        )
        return parity

    def build(self, queries: list[str], candidates: list[str], precisions: tuple[str, ...]) -> ExportResult:
        reference = self.reference(queries, candidates)
        work = self.staging / "work"
        self.log("exporting the fp32 graph (optimum)")
        raw = export_raw(self.checkpoint, work)
        fp32 = self.staging / VARIANTS["fp32"].file
        fused = fuse(raw, self.checkpoint, fp32)
        tokenizer_path = self.staging / "tokenizer.json"
        save_tokenizer(self.model, tokenizer_path)
        self.manifest = Manifest(
            activation=activation_name(self.model),
            max_length=self.max_length,
            input_names=input_names(fp32),
            tokenizer=tokenizer_path.name,
            tokenizer_sha256=sha256_file(tokenizer_path),
            pad_token_id=int(self.model.tokenizer.pad_token_id or 0),
            variants={},
            gates=self.gates.to_dict(),
            source={
                "checkpoint": str(self.checkpoint),
                "model_type": self.architecture.model_type,
                "calibration_pairs": len(queries),
                "threshold": tuned_threshold(self.checkpoint),
                "text": trained_text(self.checkpoint),
            },
            versions=installed_versions(VERSIONED),
            format_version=MANIFEST_VERSION,
        )
        encoded = PairTokenizer.from_artifact(self.staging, self.manifest).encode(queries, candidates)
        self.manifest.source["calibration_lengths"] = length_mix(encoded)
        result = ExportResult(self.manifest)
        self._add_variant("fp32", fp32, {"ort_transformer_fusions": fused})
        result.parity["fp32"] = self._check("fp32", reference, queries, candidates)
        if "int8" in precisions:
            result.parity["int8"] = self._int8(raw, reference, queries, candidates, result)
        if "fp16" in precisions:
            path = self.staging / VARIANTS["fp16"].file
            self._add_variant("fp16", path, convert_fp16(fp32, path, self.architecture))
            result.parity["fp16"] = self._check("fp16", reference, queries, candidates)
        for precision in ADVISORY:
            if precision in precisions:
                source = raw if VARIANTS[precision].built_from == "unfused" else fp32
                self._openvino(precision, source, reference, queries, candidates, result)
        for precision, parity in result.parity.items():
            self.manifest.variants[precision].parity = parity
        shutil.rmtree(work)
        if not all(parity["passed"] for precision, parity in result.parity.items() if precision not in ADVISORY):
            result.manifest = None
        else:
            self.manifest.write(self.staging)
        return result

    def _openvino(
        self,
        precision: str,
        source: Path,
        reference: np.ndarray,
        queries: list[str],
        candidates: list[str],
        result: ExportResult,
    ) -> None:
        """An OpenVINO variant, gated: the fp32 graph (`source`) in bf16 (where this CPU runs bf16) or f32, or
        int8-openvino built from the unfused graph (`source`); skipped (logged) where this machine cannot run it."""
        inference = VARIANTS[precision].inference
        if inference == "bf16-where-available":
            inference = "bf16" if cpu_info().has_bf16 else "fp32"
        recipe: dict[str, Any] = {"runtime": VARIANTS[precision].runtime, "inference_precision": inference}
        skip = unavailable_reason(Variant(source.name, "", recipe=recipe), precision, cpu_info())
        if skip:
            self.log(f"{precision} not built: {skip}")
            return
        path = source
        if VARIANTS[precision].file != source.name:  # a graph of its own: int8 weights for OpenVINO
            self.log(
                f"int8-openvino: int8 weights (smoothed, GPTQ-rounded), per-token activations, {inference} elsewhere"
            )
            path = self.staging / VARIANTS[precision].file
            done, shapes = weight_only_int8(
                source, path, self._fitting_batches(queries, candidates), self._calibrations
            )
            self.log("  calibrated: " + ", ".join(f"{key} {value}" for key, value in done.items()))
            recipe.update(
                weights="int8 per output channel",
                activations="per-token (OpenVINO dynamic quantization)",
                quantization_group=int(self.model.model.config.hidden_size),
                int8_weight_shapes=shapes,
                smooth_alpha=ALPHA,
                rounding="gptq",
            )
            skip = unavailable_reason(Variant(path.name, "", recipe=recipe), precision, cpu_info())
            if skip:
                path.unlink()
                self.log(f"{precision} not kept: {skip}")
                return
        self._add_variant(precision, path, recipe)
        result.parity[precision] = self._check(precision, reference, queries, candidates)
        if not result.parity[precision]["passed"]:
            self.log(f"  {precision} failed its gate: recorded in the manifest, never chosen by --precision auto")

    def _fitting_batches(self, queries: list[str], candidates: list[str]) -> list[dict[str, np.ndarray]]:
        """The pairs calibrated recipes fit on (`fitting_pairs`: never the gate's `queries`, `candidates`) as
        model inputs, in `scorer run`'s tokenization, batches and padding; built once per export."""
        assert self.manifest is not None
        if self._fitting is None:
            tokenizer = PairTokenizer.from_artifact(self.staging, self.manifest)
            encoded = tokenizer.encode(*fitting_pairs((queries, candidates)))
            self._fitting = [feeds for _, feeds in padded_batches(encoded, self.manifest.pad_token_id)]
        return self._fitting

    def _int8(
        self, raw: Path, reference: np.ndarray, queries: list[str], candidates: list[str], result: ExportResult
    ) -> dict[str, Any]:
        """Try recipes fastest first; keep the first that passes the gate (all attempts are recorded)."""
        path = self.staging / VARIANTS["int8"].file
        parity: dict[str, Any] = {}
        for recipe in int8_recipes(encoder_layers(raw, self.architecture), self.int8_activations):
            self.log(f"int8 recipe: {recipe.describe()}")
            calibration = self._fitting_batches(queries, candidates) if recipe.calibrated else None
            done = quantize_int8(raw, path, recipe, self.architecture, calibration, self._calibrations)
            if done:
                self.log("  calibrated: " + ", ".join(f"{key} {value}" for key, value in done.items()))
            self._add_variant("int8", path, recipe.to_dict())
            parity = self._check("int8", reference, queries, candidates)
            result.int8_attempts.append({"recipe": recipe.to_dict(), **parity})
            if parity["passed"]:
                break
        parity["attempts"] = [
            {key: attempt[key] for key in ("recipe", "spearman", "flips", "max_abs_diff", "passed")}
            for attempt in result.int8_attempts
        ]
        return parity


def _metrics(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's metrics.json from `scorer train`, or {} (another tool's checkpoint, or unreadable)."""
    try:
        metrics = json.loads((checkpoint / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def tuned_threshold(checkpoint: Path) -> float | None:
    """The decision threshold `scorer train` tuned on evaluation pairs (its metrics.json), if any."""
    value = _metrics(checkpoint).get("threshold")
    return float(value) if isinstance(value, int | float) and 0 < value <= 1 else None


def trained_text(checkpoint: Path) -> dict[str, str] | None:
    """The text specs (`scorer.record_text`) `scorer train` built the pairs' texts with, if it recorded them."""
    text = _metrics(checkpoint).get("text")
    if isinstance(text, dict) and all(isinstance(text.get(side), str) for side in ("query", "candidate")):
        return {side: text[side] for side in ("query", "candidate")}
    return None


def save_tokenizer(model: CrossEncoder, path: Path) -> None:
    """The fast tokenizer, saved with the truncation `scorer run` applies (so a run can check the manifest)."""
    tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(int(model.max_length), strategy="longest_first")
    tokenizer.save(str(path))


def export_artifact(
    checkpoint: Path,
    output: Path,
    gates: Gates,
    queries: list[str],
    candidates: list[str],
    precisions: tuple[str, ...] = PRECISIONS,
    max_length: int | None = None,
    log: Callable[[str], None] = print,
    int8_activations: str = "auto",
) -> ExportResult:
    """Export and gate in a directory beside `output` that replaces it only when every gate passed; else
    raise GateError and leave `output` as it was. Check `output` with `check_dir_target` first."""
    with staged_directory(output) as staging:
        exporter = Exporter(checkpoint, staging, gates, max_length, log, int8_activations)
        result = exporter.build(queries, candidates, precisions)
        if result.manifest is None:
            failed = {p: v["failures"] for p, v in result.parity.items() if not v["passed"] and p not in ADVISORY}
            raise GateError(f"parity gate failed, no artifact written: {failed}")
    return result
