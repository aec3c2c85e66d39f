"""int8 graphs for CPU: ONNX Runtime dynamic quantization (int8 weights, activations quantized per
tensor at run time), with recipes from fastest to most conservative.

A recipe may leave whole encoder layers in fp32: per BRIEF §5 a few layers (usually the first) hold
the activation outliers that flip dedup decisions, so the exporter keeps the fewest layers in fp32
that let the variant pass its gate.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

LAYER_PATTERN = re.compile(r"layers?\.(\d+)[./]")


@dataclass(frozen=True)
class Int8Recipe:
    """How to quantize: which ops, weight format, and which encoder layers stay fp32."""

    op_types: tuple[str, ...] = ("MatMul", "Attention")
    per_channel: bool = True
    reduce_range: bool = True
    fp32_layers: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def layer_of(node: onnx.NodeProto) -> int | None:
    """Encoder layer index from an exported node name (`/bert/encoder/layer.3/...`), if any."""
    match = LAYER_PATTERN.search(node.name)
    return int(match.group(1)) if match else None


def encoder_layers(path: Path) -> list[int]:
    model = onnx.load(str(path), load_external_data=False)
    return sorted({layer for node in model.graph.node if (layer := layer_of(node)) is not None})


def quantize_int8(fp32_path: Path, out_path: Path, recipe: Int8Recipe) -> None:
    """Write the dynamically quantized graph for `recipe`."""
    model = onnx.load(str(fp32_path), load_external_data=False)
    excluded = [node.name for node in model.graph.node if layer_of(node) in recipe.fp32_layers]
    quantize_dynamic(
        str(fp32_path),
        str(out_path),
        op_types_to_quantize=list(recipe.op_types),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
