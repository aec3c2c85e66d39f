"""What the export and the benchmarks know about each encoder architecture, one entry per `model_type`
(as optimum's per-model configs do): supporting a new one is one entry in `ARCHITECTURES`.

Pure data and the standard library only (no torch, transformers or onnxruntime), so that
`benchmarks.flops` reads it without the torch stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from scorer.errors import InputError


class UnsupportedArchitectureError(InputError, ValueError):
    """A checkpoint whose `model_type` has no entry: bad input (exit status 2 at the command line)."""


@dataclass(frozen=True)
class ConfigKeys:
    """Names of the dimensions in the checkpoint's `config.json` (DistilBERT has its own)."""

    hidden: str = "hidden_size"
    intermediate: str = "intermediate_size"
    layers: str = "num_hidden_layers"


@dataclass(frozen=True)
class SlidingWindow:
    """Local attention: a layer whose index is not a multiple of `config[global_every_key]` attends to
    `config[window_key]` tokens only."""

    global_every_key: str
    window_key: str


@dataclass(frozen=True)
class Architecture:
    """How one `model_type` is exported, quantized, loaded and counted.

    - `fusion`: ONNX Runtime transformer-optimizer model type, or None where fusions do not pay off
      (ModernBERT: no Attention fusion, no gain, benchmarks/NOTES.md 4).
    - `fp32_name_fragments`, `fp32_op_types`: nodes the fp16 graph keeps in fp32 (RoPE, the head).
    - `layer_pattern`: regex whose one group is the encoder layer index in an exported node name
      (int8 recipes keep whole layers in fp32).
    - `config_kwargs`, `model_kwargs`: extra arguments for loading the CrossEncoder export-safely.
    - `linear_weights`: (a, b) with a layer's linear-map weights = a h^2 + b h i; `config_keys` and
      `sliding_window` tell `benchmarks.flops` where the dimensions and the local attention are.
    """

    model_type: str
    fusion: str | None
    fp32_name_fragments: tuple[str, ...]
    fp32_op_types: tuple[str, ...]
    layer_pattern: str
    linear_weights: tuple[int, int]
    config_keys: ConfigKeys = ConfigKeys()
    sliding_window: SlidingWindow | None = None
    config_kwargs: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    model_kwargs: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({"attn_implementation": "sdpa"}), hash=False
    )

    def __post_init__(self) -> None:
        if re.compile(self.layer_pattern).groups != 1:
            raise ValueError(f"{self.model_type}: layer_pattern {self.layer_pattern!r} needs exactly one group")

    def layer_index(self, node_name: str) -> int | None:
        """Encoder layer index in an exported node name, if the node belongs to a layer."""
        match = re.search(self.layer_pattern, node_name)
        return int(match.group(1)) if match else None

    def keeps_fp32(self, node_name: str, op_type: str) -> bool:
        """Whether the fp16 graph keeps this node in fp32."""
        return op_type in self.fp32_op_types or any(fragment in node_name for fragment in self.fp32_name_fragments)

    def linear_params(self, hidden: int, intermediate: int) -> int:
        """Weights of one encoder layer's linear maps (biases ignored)."""
        a, b = self.linear_weights
        return a * hidden * hidden + b * hidden * intermediate


# Q, K, V and output projections (4 h^2); FFN in and out (2 h i); `/bert/encoder/layer.3/...`.
BERT = Architecture(
    model_type="bert",
    fusion="bert",
    fp32_name_fragments=("/classifier/", "/pooler/"),
    fp32_op_types=(),
    layer_pattern=r"layer\.(\d+)[./]",
    linear_weights=(4, 2),
)
# Fused QKV and output (4 h^2); GLU input of width 2i and output of width i (3 h i); `/model/layers.3/...`.
# Loaded with SDPA and without torch.compile (flash attention and compile break the export).
MODERNBERT = Architecture(
    model_type="modernbert",
    fusion=None,
    fp32_name_fragments=("rotary", "/head/", "/classifier/"),
    fp32_op_types=("Sin", "Cos"),
    layer_pattern=r"layers\.(\d+)[./]",
    linear_weights=(4, 3),
    sliding_window=SlidingWindow(global_every_key="global_attn_every_n_layers", window_key="local_attention"),
    config_kwargs=MappingProxyType({"reference_compile": False}),
)
ARCHITECTURES: dict[str, Architecture] = {
    entry.model_type: entry
    for entry in (
        BERT,
        replace(BERT, model_type="roberta"),
        replace(BERT, model_type="xlm-roberta"),
        replace(BERT, model_type="electra"),
        replace(
            BERT,
            model_type="distilbert",
            fp32_name_fragments=("/pre_classifier/", "/classifier/"),
            config_keys=ConfigKeys("dim", "hidden_dim", "n_layers"),
        ),
        MODERNBERT,
    )
}
_ANY_LAYER = re.compile("|".join(sorted({entry.layer_pattern for entry in ARCHITECTURES.values()})))


def architecture(model_type: str, source: str = "config.json") -> Architecture:
    """The entry for `model_type` (read from `source`); UnsupportedArchitectureError names the supported ones."""
    if model_type not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"{source}: model_type {model_type!r} is not supported; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[model_type]


def layer_index(node_name: str, entry: Architecture | None = None) -> int | None:
    """Encoder layer index in a node name, by `entry`'s pattern, or by any supported architecture's."""
    if entry is not None:
        return entry.layer_index(node_name)
    match = _ANY_LAYER.search(node_name)
    return next(int(group) for group in match.groups() if group is not None) if match else None


def keeps_fp32(node_name: str, op_type: str, entry: Architecture | None = None) -> bool:
    """Whether the fp16 graph keeps a node in fp32, by `entry`'s rules, or by any supported architecture's."""
    entries = (entry,) if entry is not None else ARCHITECTURES.values()
    return any(candidate.keeps_fp32(node_name, op_type) for candidate in entries)
