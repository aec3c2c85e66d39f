"""int8 graphs for CPU, from the unfused fp32 graph (every projection is a plain MatMul there).

Three activation schemes, each with int8 per-channel weights and int8 token embeddings
(`export.embedding`):
- `per-tensor`: ONNX Runtime's dynamic quantization (fused DynamicQuantizeMatMul kernels, fastest);
  one scale per activation tensor, so an outlier token coarsens all the others.
- `per-token-mixed`: one scale per row (`export.per_token`): symmetric for activations out of LayerNorm
  and attention, asymmetric out of GELU; ~4% faster than `per-token`, a few more flips.
- `per-token`: one scale and zero point per row, asymmetric everywhere: far fewer flipped decisions
  than per-tensor (benchmarks/NOTES.md 9 and 12), ~15% slower than it.
A recipe may also keep whole encoder layers in fp32 (the first layers hold the outliers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from export.architectures import Architecture, layer_index
from export.embedding import quantize_embeddings
from export.per_token import quantize_per_token

Scheme = Literal["per-tensor", "per-token-mixed", "per-token"]


@dataclass(frozen=True)
class Int8Recipe:
    """Activation scheme, and which encoder layers stay fp32."""

    activations: Scheme = "per-tensor"
    fp32_layers: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "weights": "int8 per output channel", "embeddings": "int8 per row"}

    def describe(self) -> str:
        kept = ", ".join(map(str, self.fp32_layers)) or "none"
        return f"{self.activations} activations, layers kept fp32: {kept}"


def layer_of(node: onnx.NodeProto, architecture: Architecture | None = None) -> int | None:
    """Encoder layer index from an exported node name (`/bert/encoder/layer.3/...`, `/model/layers.3/...`),
    by `architecture`'s pattern (None: any supported one's), if any."""
    return layer_index(node.name, architecture)


def encoder_layers(path: Path, architecture: Architecture | None = None) -> list[int]:
    model = onnx.load(str(path), load_external_data=False)
    return sorted({layer for node in model.graph.node if (layer := layer_of(node, architecture)) is not None})


def quantize_int8(raw_path: Path, out_path: Path, recipe: Int8Recipe, architecture: Architecture | None = None) -> None:
    """Write the int8 graph for `recipe` from the unfused fp32 graph (token embeddings int8 in every recipe);
    `architecture` (None: any supported one) names the encoder layers."""
    if recipe.activations != "per-tensor":
        symmetric = recipe.activations == "per-token-mixed"
        kept = recipe.fp32_layers
        quantize_per_token(raw_path, out_path, lambda node: layer_of(node, architecture) in kept, symmetric)
    else:
        _per_tensor(raw_path, out_path, recipe, architecture)
    model = onnx.load(str(out_path))
    quantize_embeddings(model)
    onnx.save(model, str(out_path))


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
