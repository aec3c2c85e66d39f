"""The CrossEncoder's output activation, applied to ONNX logits exactly as `CrossEncoder.predict` does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "identity": lambda x: x.astype(np.float32),
    "tanh": lambda x: np.tanh(x.astype(np.float64)).astype(np.float32),
}


def apply_activation(name: str, logits: np.ndarray) -> np.ndarray:
    """Map raw logits to scores with the named activation (as recorded in the manifest)."""
    try:
        return ACTIVATIONS[name](logits)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
