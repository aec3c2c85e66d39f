"""The precision variants of an artifact, one entry each: what runs it, from which graph, under which gate, on
what hardware. Export, the gate, loading, `--precision auto` and the benchmarks all read this table (as
`export.architectures` is read for model types); a new variant is one entry.

>>> [name for name, spec in VARIANTS.items() if spec.advisory]
['bf16', 'fp32-openvino', 'int8-openvino']
>>> VARIANTS["int8-openvino"].gated_as, VARIANTS["fp16"].needs
('int8', 'cuda')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Runtime = Literal["onnxruntime", "openvino"]
Source = Literal["fused", "unfused"]  # the fp32 graph as exported and fused, or optimum's graph before fusion


@dataclass(frozen=True)
class VariantSpec:
    """One precision variant.

    `file`: the ONNX file it runs (a file of its own, or the fp32 graph); `built_from`: the graph export builds
    it from; `gated_as`: whose gate thresholds it is held to; `advisory`: a failed gate is recorded (and auto
    never picks it) but does not stop the artifact; `needs`: the hardware it runs on (`cuda`, or `bf16`
    instructions); `gpu`: runs on CUDA when there is one (fp32) or only there (fp16); `full_precision`: an fp32
    that auto runs only when no faster variant is left; `inference`: OpenVINO's inference precision, `bf16-where-
    available` meaning bf16 on CPUs that have it and f32 elsewhere.
    """

    runtime: Runtime
    file: str
    built_from: Source
    gated_as: str
    advisory: bool = False
    needs: Literal["cuda", "bf16"] | None = None
    gpu: bool = False
    full_precision: bool = False
    inference: Literal["bf16", "fp32", "bf16-where-available"] | None = None


VARIANTS: dict[str, VariantSpec] = {
    "fp32": VariantSpec("onnxruntime", "model.fp32.onnx", "fused", "fp32", gpu=True, full_precision=True),
    "int8": VariantSpec("onnxruntime", "model.int8.onnx", "unfused", "int8"),
    "fp16": VariantSpec("onnxruntime", "model.fp16.onnx", "fused", "fp16", needs="cuda", gpu=True),
    "bf16": VariantSpec("openvino", "model.fp32.onnx", "fused", "bf16", advisory=True, needs="bf16", inference="bf16"),
    "fp32-openvino": VariantSpec(
        "openvino", "model.fp32.onnx", "fused", "fp32", advisory=True, full_precision=True, inference="fp32"
    ),
    "int8-openvino": VariantSpec(
        "openvino", "model.int8-openvino.onnx", "unfused", "int8", advisory=True, inference="bf16-where-available"
    ),
}
PRECISIONS = tuple(VARIANTS)
ADVISORY = tuple(name for name, spec in VARIANTS.items() if spec.advisory)
FULL_PRECISION = tuple(name for name, spec in VARIANTS.items() if spec.full_precision)
