"""The torch reference: the checkpoint loaded as `sentence_transformers.CrossEncoder`, as users load it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sentence_transformers.cross_encoder import CrossEncoder
from transformers import AutoConfig

from export.architectures import Architecture, architecture

# torch.nn activation class name -> scorer.activation name
ACTIVATION_NAMES = {"Sigmoid": "sigmoid", "Identity": "identity", "Tanh": "tanh"}


def model_type(checkpoint: str | Path) -> str:
    return AutoConfig.from_pretrained(str(checkpoint)).model_type


def checkpoint_architecture(checkpoint: str | Path) -> Architecture:
    """The checkpoint's entry in `export.architectures` (UnsupportedArchitectureError if it has none)."""
    return architecture(model_type(checkpoint), str(Path(checkpoint) / "config.json"))


def load_cross_encoder(checkpoint: str | Path, max_length: int | None = None) -> CrossEncoder:
    """Load on CPU with the architecture's export-safe settings (SDPA attention; ModernBERT: no torch.compile)."""
    entry = checkpoint_architecture(checkpoint)
    return CrossEncoder(
        str(checkpoint),
        device="cpu",
        max_length=max_length,
        model_kwargs=dict(entry.model_kwargs),
        config_kwargs=dict(entry.config_kwargs),
    )


def activation_name(model: CrossEncoder) -> str:
    """The activation `predict` applies, by the name the manifest records."""
    name = type(model.activation_fn).__name__
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"unsupported CrossEncoder activation {name}; supported: {', '.join(ACTIVATION_NAMES)}")
    return ACTIVATION_NAMES[name]


def reference_scores(
    model: CrossEncoder, queries: list[str], candidates: list[str], batch_size: int = 32
) -> np.ndarray:
    """What `CrossEncoder.predict` returns for the pairs (float32)."""
    pairs = list(zip(queries, candidates, strict=True))
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(scores, dtype=np.float32).reshape(len(pairs))
