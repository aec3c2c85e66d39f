"""int8 graphs for CPU, from the unfused fp32 graph (every projection is a plain MatMul there).

Three activation schemes, each with int8 per-channel weights and int8 token embeddings
(`export.embedding`):
- `per-tensor`: ONNX Runtime's dynamic quantization (fused DynamicQuantizeMatMul kernels, fastest);
  one scale per activation tensor, so an outlier token coarsens all the others.
- `per-token-mixed`: one scale per row (`export.per_token`): symmetric for activations out of LayerNorm
  and attention, asymmetric out of GELU; ~4% faster than `per-token`, a few more flips.
- `per-token`: one scale and zero point per row, asymmetric everywhere: far fewer flipped decisions
  than per-tensor (benchmarks/NOTES.md 9 and 12), ~15% slower than it.
A recipe may also keep whole encoder layers in fp32 (the first layers hold the outliers), or only their
feed-forward MatMuls (most of the int8 error there, benchmarks/results/int8-calibrated/notes.md), and a per-token
recipe may be calibrated on fitting pairs (`export.smoothing`): outlier channels smoothed (LayerNorm
outputs and FFN-out inputs, `smooth_alpha`) and weights rounded with GPTQ's error feedback (`rounding`).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from export.architectures import Architecture, layer_index
from export.embedding import quantize_embeddings
from export.per_token import quantize_per_token
from export.smoothing import Calibration, calibrated, ffn_matmuls

Scheme = Literal["per-tensor", "per-token-mixed", "per-token"]
Rounding = Literal["nearest", "gptq"]


@dataclass(frozen=True)
class Int8Recipe:
    """Activation scheme, which encoder layers stay fp32, and (per-token schemes) the calibrated steps:
    smoothing's migration strength (None: none) and how weights are rounded to int8."""

    activations: Scheme = "per-tensor"
    fp32_layers: tuple[int, ...] = field(default_factory=tuple)
    smooth_alpha: float | None = None
    rounding: Rounding = "nearest"
    fp32_parts: Literal["layer", "ffn"] = "layer"  # ffn: only the feed-forward MatMuls of fp32_layers

    @property
    def calibrated(self) -> bool:
        """Whether `quantize_int8` needs calibration batches for this recipe."""
        return self.smooth_alpha is not None or self.rounding != "nearest"

    def to_dict(self) -> dict[str, object]:
        """The manifest's record; the calibrated steps only where used (older manifests lack them)."""
        fields = asdict(self)
        if not self.calibrated:
            del fields["smooth_alpha"], fields["rounding"]
        if self.fp32_parts == "layer":
            del fields["fp32_parts"]
        return {**fields, "weights": "int8 per output channel", "embeddings": "int8 per row"}

    def describe(self) -> str:
        kept = ", ".join(map(str, self.fp32_layers)) or "none"
        smoothed = f", smoothed (alpha {self.smooth_alpha})" if self.smooth_alpha is not None else ""
        rounded = f", {self.rounding} weight rounding" if self.rounding != "nearest" else ""
        parts = " (feed-forward MatMuls only)" if self.fp32_parts == "ffn" and self.fp32_layers else ""
        return f"{self.activations} activations{smoothed}{rounded}, layers kept fp32: {kept}{parts}"


def layer_of(node: onnx.NodeProto, architecture: Architecture | None = None) -> int | None:
    """Encoder layer index from an exported node name (`/bert/encoder/layer.3/...`, `/model/layers.3/...`),
    by `architecture`'s pattern (None: any supported one's), if any."""
    return layer_index(node.name, architecture)


def encoder_layers(path: Path, architecture: Architecture | None = None) -> list[int]:
    model = onnx.load(str(path), load_external_data=False)
    return sorted({layer for node in model.graph.node if (layer := layer_of(node, architecture)) is not None})


def quantize_int8(
    raw_path: Path,
    out_path: Path,
    recipe: Int8Recipe,
    architecture: Architecture | None = None,
    calibration: list[dict[str, np.ndarray]] | None = None,
    cache: dict[tuple, Calibration] | None = None,
) -> dict[str, int]:
    """Write the int8 graph for `recipe` from the unfused fp32 graph (token embeddings int8 in every recipe);
    `architecture` (None: any supported one) names the encoder layers. A calibrated recipe needs
    `calibration`: model input batches (`scorer run`'s padding); `cache` (a dict the caller keeps) lets
    the recipes of an export (and `export.openvino_int8`) share one calibration (`export.smoothing.calibrated`). Returns what calibration did."""
    done: dict[str, int] = {}
    if recipe.activations != "per-tensor":
        symmetric = recipe.activations == "per-token-mixed"
        kept = recipe.fp32_layers
        gptq = recipe.rounding == "gptq"

        ffn = ffn_matmuls(onnx.load(str(raw_path), load_external_data=False)) if recipe.fp32_parts == "ffn" else None

        def skip(node: onnx.NodeProto) -> bool:
            return layer_of(node, architecture) in kept and (ffn is None or node.name in ffn)

        if not recipe.calibrated:
            quantize_per_token(raw_path, out_path, skip, symmetric)
        elif not calibration:
            raise ValueError(f"int8 recipe '{recipe.describe()}' needs calibration batches")
        else:
            fit = calibrated({} if cache is None else cache, raw_path, calibration, recipe.smooth_alpha, gptq)
            model = onnx.load(str(raw_path), load_external_data=False)
            weights = fit.rounded(skip=frozenset(node.name for node in model.graph.node if skip(node))) if gptq else {}
            done = {**fit.done, "gptq_weights": len(weights)}
            with tempfile.TemporaryDirectory(prefix="int8-calibrated-") as work:
                source = Path(work) / "smoothed.onnx"
                source.write_bytes(fit.model)
                quantize_per_token(source, out_path, skip, symmetric, weights)
    elif recipe.calibrated or recipe.fp32_parts != "layer":
        raise ValueError("smoothing, GPTQ rounding and fp32 feed-forward parts apply to per-token recipes only")
    else:
        _per_tensor(raw_path, out_path, recipe, architecture)
    model = onnx.load(str(out_path))
    quantize_embeddings(model)
    onnx.save(model, str(out_path))
    return done


def _per_tensor(raw_path: Path, out_path: Path, recipe: Int8Recipe, architecture: Architecture | None) -> None:
    model = onnx.load(str(raw_path), load_external_data=False)
    quantize_dynamic(
        str(raw_path),
        str(out_path),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=[node.name for node in model.graph.node if layer_of(node, architecture) in recipe.fp32_layers],
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
