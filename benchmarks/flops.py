"""Approximate encoder FLOPs per pair, from a checkpoint's `config.json` (every architecture in
`export.architectures`, whose entries give the per-layer weights and the sliding-window fields).

Only matrix products are counted (LayerNorm, GELU, softmax, RoPE and the embedding gather are
memory-bound and cheap next to them). For a pair of `n` tokens:

    flops(n) = n * sum over layers of (2 * P_linear + 4 * span * hidden) + 2 * (hidden^2 + hidden * labels)

- `P_linear`: weights of the layer's linear maps (one multiply-add = 2 FLOPs per weight per token):
  BERT family `4 h^2 + 2 h i` (Q, K, V, output; FFN in and out); ModernBERT `4 h^2 + 3 h i` (fused QKV,
  output; GLU input of width 2i, output of width i).
- attention: scores `Q K^T` and `softmax(.) V` cost `2 * span * h` each per token; `span = n` for
  global layers and `min(n, window)` for sliding-window layers (ModernBERT: every layer whose index is
  not a multiple of `global_attn_every_n_layers` attends to `local_attention` tokens). This is the useful
  work: the eager/SDPA kernels compute the full `n x n` scores and mask them; for `n <= 128` both agree.
- the head (BERT pooler or ModernBERT head dense, then the classifier) runs once per pair.

>>> minilm = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
>>> round(pair_flops(minilm, 36) / 1e9, 3)
0.777
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from export.architectures import architecture


def load_config(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's `config.json` as a dict (no transformers import)."""
    return json.loads((Path(checkpoint) / "config.json").read_text())


def _labels(config: dict[str, Any]) -> int:
    return len(config.get("id2label") or {0: "LABEL_0"})


def _dimensions(config: dict[str, Any]) -> tuple[int, int, int]:
    """Hidden size, intermediate size and layer count, under the architecture's config key names."""
    keys = architecture(config["model_type"]).config_keys
    return config[keys.hidden], config[keys.intermediate], config[keys.layers]


def linear_params_per_layer(config: dict[str, Any]) -> int:
    """Weights in one encoder layer's linear maps (biases ignored)."""
    hidden, intermediate, _ = _dimensions(config)
    return architecture(config["model_type"]).linear_params(hidden, intermediate)


def attention_spans(config: dict[str, Any], tokens: int) -> list[int]:
    """Tokens each query token attends to, per layer, for a sequence of `tokens`."""
    layers = _dimensions(config)[2]
    window = architecture(config["model_type"]).sliding_window
    if window is None:
        return [tokens] * layers
    every = config.get(window.global_every_key, 1)
    size = config.get(window.window_key, tokens)
    return [tokens if layer % every == 0 else min(tokens, size) for layer in range(layers)]


def flops_per_token(config: dict[str, Any], tokens: int) -> int:
    """Encoder FLOPs per token of a `tokens`-long sequence (linear maps plus attention)."""
    hidden, _, layers = _dimensions(config)
    linear = 2 * linear_params_per_layer(config) * layers
    return linear + sum(4 * span * hidden for span in attention_spans(config, tokens))


def pair_flops(config: dict[str, Any], tokens: int) -> int:
    """FLOPs to score one pair of `tokens` tokens: the encoder on every token, the head once."""
    h = _dimensions(config)[0]
    return tokens * flops_per_token(config, tokens) + 2 * (h * h + h * _labels(config))


def total_flops(config: dict[str, Any], lengths: np.ndarray) -> float:
    """FLOPs to score pairs of the given token lengths (padding excluded: it is not useful work)."""
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    return float(sum(pair_flops(config, int(n)) * int(c) for n, c in zip(values, counts, strict=True)))
