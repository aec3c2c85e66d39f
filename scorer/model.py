"""A variant of an artifact ready to score (`LoadedModel`): a window of pairs is tokenized, planned into
padding-aware batches, run through its runtime and scattered back to input order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from scorer.activation import apply_activation
from scorer.artifact import Manifest, load_manifest, variant_path
from scorer.batching import CPU_PROFILE, Batch, BatchProfile, pad_batch, plan_for, profile_for
from scorer.openvino_backend import OPENVINO, OpenVinoModel
from scorer.prefetch import prefetched
from scorer.session import CUDA, DEFAULT_GPU_MEM_LIMIT, OnnxModel, provider_for
from scorer.tokenize import EncodedPairs, PairTokenizer

DEFAULT_BATCH_TOKENS = CPU_PROFILE.batch_tokens  # on the CPU; CUDA's is larger (scorer.batching.CUDA_PROFILE)
DEFAULT_WINDOW_ROWS = CPU_PROFILE.window_rows
MAX_BATCH_TOKENS = 1 << 20  # bounds that keep one batch and one window in memory
MAX_WINDOW_ROWS = 1 << 20
T = TypeVar("T")


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
        cls,
        directory: Path,
        precision: str,
        threads: int | None = None,
        provider: str | None = None,
        gpu_mem_limit: int = DEFAULT_GPU_MEM_LIMIT,
    ) -> LoadedModel:
        """Load one variant after checking its files; `provider` overrides the default for the precision,
        `gpu_mem_limit` bounds the CUDA arena (bytes)."""
        manifest = load_manifest(directory)
        path = variant_path(directory, manifest, precision)
        tokenizer = PairTokenizer.from_artifact(directory, manifest)
        recipe = manifest.variants[precision].recipe
        onnx: OnnxModel | OpenVinoModel
        if recipe.get("runtime") == OPENVINO:
            group = recipe.get("quantization_group")
            onnx = OpenVinoModel.load(path, str(recipe.get("inference_precision")), threads, group and int(group))
        else:
            onnx = OnnxModel.load(path, provider or provider_for(precision), threads, gpu_mem_limit)
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

    @property
    def profile(self) -> BatchProfile:
        """Batching defaults of the runtime this variant runs on."""
        return profile_for(self.onnx.provider)

    def score_encoded(self, encoded: EncodedPairs, batch_tokens: int | None = None) -> tuple[np.ndarray, Stats]:
        """Scores (float32, window order) for an encoded window, and its counters; `batch_tokens` defaults to
        the provider's budget.

        On CUDA the next batch is padded in a thread while the GPU runs the current one (ONNX Runtime
        releases the GIL), so the GPU does not wait on numpy; on the CPU, ONNX Runtime already uses
        every core and batches are padded in turn.
        """
        scores = np.empty(len(encoded.ids), dtype=np.float32)
        stats = Stats(pairs=len(encoded.ids), tokens=int(encoded.lengths.sum()), truncated=encoded.truncated)
        profile = self.profile
        batches = plan_for(encoded.lengths, profile, batch_tokens)

        def pad(batch: Batch) -> tuple[Batch, dict[str, np.ndarray]]:
            return batch, pad_batch(encoded.ids, encoded.type_ids, batch, self.manifest.pad_token_id)

        overlap = self.onnx.provider == CUDA and len(batches) > 1
        with (prefetched if overlap else _inline)(batches, pad) as padded:
            for batch, feeds in padded:
                scores[batch.rows] = apply_activation(self.manifest.activation, self.onnx.logits(feeds))
                stats.padded_tokens += batch.padded_tokens
                stats.batches += 1
        return scores, stats

    def score(
        self,
        queries: list[str],
        candidates: list[str],
        batch_tokens: int | None = None,
        window_rows: int | None = None,
    ) -> np.ndarray:
        """Score in-memory pairs through the same windows and batches as `scorer run` (the provider's
        defaults unless given)."""
        window_rows = window_rows or self.profile.window_rows
        parts = [
            self.score_encoded(
                self.tokenizer.encode(queries[i : i + window_rows], candidates[i : i + window_rows]), batch_tokens
            )[0]
            for i in range(0, len(queries), window_rows)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


@contextmanager
def _inline(items: list[Batch], work: Callable[[Batch], T]) -> Iterator[Iterator[T]]:
    """`prefetched`'s interface, working on each item when it is needed (the CPU path)."""
    yield (work(item) for item in items)
