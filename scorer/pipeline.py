"""Scoring a window of pairs: tokenize, plan padding-aware batches, run ONNX, scatter back to input order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scorer.activation import apply_activation
from scorer.artifact import Manifest, load_manifest, variant_path
from scorer.batching import pad_batch, plan_batches
from scorer.openvino_backend import OPENVINO, OpenVinoModel
from scorer.session import CUDA, OnnxModel, provider_for
from scorer.tokenize import EncodedPairs, PairTokenizer

DEFAULT_BATCH_TOKENS = 8192
DEFAULT_WINDOW_ROWS = 4096
MAX_BATCH_TOKENS = 1 << 20  # bounds that keep one batch and one window in memory
MAX_WINDOW_ROWS = 1 << 20


@dataclass
class Stats:
    """Counters a run reports: pairs, real and padded tokens, truncated pairs, batches."""

    pairs: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    batches: int = 0

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def padding_efficiency(self) -> float:
        return self.tokens / self.padded_tokens if self.padded_tokens else 1.0


@dataclass
class LoadedModel:
    """A variant of an artifact, ready to score: manifest, tokenizer and the runtime over its ONNX file
    (`onnx`: ONNX Runtime, or OpenVINO for a variant whose recipe names `runtime: openvino`)."""

    directory: Path
    manifest: Manifest
    precision: str
    tokenizer: PairTokenizer
    onnx: OnnxModel | OpenVinoModel
    sha256: str = field(default="")

    @classmethod
    def load(
        cls, directory: Path, precision: str, threads: int | None = None, provider: str | None = None
    ) -> LoadedModel:
        """Load one variant after checking its files; `provider` overrides the default for the precision."""
        manifest = load_manifest(directory)
        path = variant_path(directory, manifest, precision)
        tokenizer = PairTokenizer.from_artifact(directory, manifest)
        recipe = manifest.variants[precision].recipe
        onnx: OnnxModel | OpenVinoModel
        if recipe.get("runtime") == OPENVINO:
            onnx = OpenVinoModel.load(path, str(recipe.get("inference_precision")), threads)
        else:
            onnx = OnnxModel.load(path, provider or provider_for(precision), threads)
        return cls(directory, manifest, precision, tokenizer, onnx, manifest.variants[precision].sha256)

    @property
    def identity(self) -> dict[str, object]:
        """What determines this variant's scores: an output scored under another identity is not reused."""
        return {
            "model_sha256": self.sha256,
            "precision": self.precision,
            "tokenizer_sha256": self.manifest.tokenizer_sha256,
            "max_length": self.manifest.max_length,
            "activation": self.manifest.activation,
        }

    def score_encoded(self, encoded: EncodedPairs, batch_tokens: int) -> tuple[np.ndarray, Stats]:
        """Scores (float32, window order) for an encoded window, and its counters."""
        scores = np.empty(len(encoded.ids), dtype=np.float32)
        stats = Stats(pairs=len(encoded.ids), tokens=int(encoded.lengths.sum()), truncated=encoded.truncated)
        multiple = 8 if self.onnx.provider == CUDA else 1
        for batch in plan_batches(encoded.lengths, batch_tokens, multiple):
            feeds = pad_batch(encoded.ids, encoded.type_ids, batch, self.manifest.pad_token_id)
            scores[batch.rows] = apply_activation(self.manifest.activation, self.onnx.logits(feeds))
            stats.padded_tokens += batch.padded_tokens
            stats.batches += 1
        return scores, stats

    def score(
        self,
        queries: list[str],
        candidates: list[str],
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        window_rows: int = DEFAULT_WINDOW_ROWS,
    ) -> np.ndarray:
        """Score in-memory pairs through the same windows and batches as `scorer run`."""
        parts = [
            self.score_encoded(
                self.tokenizer.encode(queries[i : i + window_rows], candidates[i : i + window_rows]), batch_tokens
            )[0]
            for i in range(0, len(queries), window_rows)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
