"""Run the chosen generators over a catalogue and merge their pairs.

Memory grows linearly with the catalogue; nothing is quadratic. Held for the whole run: the texts and
each finished generator's unordered pair keys (8 bytes per pair, ~25 pairs per record at k = 20). Held while one
step runs:
- the embedding step: the vectors (1.5 KB per record with the default embedder) and the faiss HNSW index, which
  copies them and adds 32 graph links per record;
- the trigram step: its matrices (~1.3 KB per record).
Lexical and trigram products run in chunks of at most 10M scores. Texts are tokenized and embedded a window
of 8192 at a time.
Peak RSS at 100k and 1M synthetic records, with and without embeddings: benchmarks/results/candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress

from scorer.candidates.catalogue import Catalogue
from scorer.candidates.embedder import Embedder, EncodeStats
from scorer.candidates.keys import key_pairs
from scorer.candidates.lexical import lexical_pairs, token_counts
from scorer.candidates.neighbours import knn_pairs
from scorer.candidates.pairs import GENERATORS, merge, unordered_keys
from scorer.candidates.text import char_trigrams, keys, product_name, weighted_tokens
from scorer.candidates.trigram import trigram_pairs

Directed = tuple[np.ndarray, np.ndarray]


@dataclass
class Blocking:
    """Merged pairs (sorted unordered keys a * n + b and generator bit masks) and what they cost."""

    pair_keys: np.ndarray
    mask: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    token_lengths: np.ndarray | None = None
    encode_stats: EncodeStats | None = None
    blank_records: int = 0  # records whose text is empty or blank: never proposed (there is nothing to compare)


def _sides(catalogue: Catalogue) -> list[tuple[range, range]]:
    """(queries, documents) record ranges: the whole catalogue against itself, or each side against the other."""
    n, split = len(catalogue), catalogue.split
    if split is None:
        return [(range(n), range(n))]
    return [(range(split), range(split, n)), (range(split, n), range(split))]


def _concat(parts: list[Directed]) -> Directed:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _sparse_pairs(
    catalogue: Catalogue,
    texts: list[str],
    k: int,
    steps: Steps,
    label: str,
    terms: Callable[[str], list[str]],
    top_k: Callable[..., Directed],
) -> Directed:
    """A sparse generator's top-k per record: term counts of every text, then `top_k` on each side."""
    counts = token_counts(terms(text) for text in texts)
    sides = _sides(catalogue)
    advance = steps.step(label, sum(len(q) for q, _ in sides))
    return _concat([top_k(counts, q, d, k, advance) for q, d in sides])


class Steps:
    """Progress bars for the long steps (disabled when not wanted)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def step(self, description: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)
        return lambda count: self.progress.advance(task, count)


def _embedding_pairs(
    catalogue: Catalogue,
    texts: list[str],
    k: int,
    embedder: Embedder,
    threads: int | None,
    steps: Steps,
    result: Blocking,
) -> Directed:
    """The k nearest neighbours of each record by its product name's embedding; what encoding cost goes to
    `result`. The vectors are freed on return, before the next generator runs."""
    start = time.perf_counter()
    names = [product_name(text) for text in texts]
    vectors, _ = embedder.encode(names, steps.step("embedding: encode", len(texts)))
    result.encode_stats = embedder.stats
    result.token_lengths = embedder.token_lengths(texts)  # whole titles: what the scorer will read
    result.seconds["embedding_encode"] = time.perf_counter() - start
    sides = _sides(catalogue)
    advance = steps.step("embedding: index + search", sum(len(q) + len(d) for q, d in sides))
    return _concat(
        [
            knn_pairs(vectors[d.start : d.stop], d.start, vectors[q.start : q.stop], q.start, k, threads, advance)
            for q, d in sides
        ]
    )


def run_generators(
    catalogue: Catalogue,
    generators: list[str],
    k: int,
    embedder: Embedder | None,
    threads: int | None,
    steps: Steps,
) -> Blocking:
    """Each generator's top-k per record, merged into unordered pairs (never a record with itself). Each
    generator's directed lists become sorted unordered keys as soon as it ends, so only those are held."""
    result = Blocking(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
    if not catalogue.possible_pairs:
        return result
    texts = catalogue.texts.to_pylist()
    runs: dict[str, Callable[[], Directed]] = {
        "lexical": lambda: _sparse_pairs(catalogue, texts, k, steps, "lexical (BM25)", weighted_tokens, lexical_pairs),
        "keys": lambda: key_pairs((keys(text) for text in texts), k, catalogue.split),
        "trigram": lambda: _sparse_pairs(catalogue, texts, k, steps, "trigram (TF-IDF)", char_trigrams, trigram_pairs),
    }
    if embedder is not None:
        runs["embedding"] = lambda: _embedding_pairs(catalogue, texts, k, embedder, threads, steps, result)
    blank = np.array([not text.strip() for text in texts], dtype=bool)
    result.blank_records = int(blank.sum())
    found: dict[str, np.ndarray] = {}
    for name in (name for name in GENERATORS if name in generators and name in runs):
        start = time.perf_counter()
        pair_keys = unordered_keys(*runs[name](), len(catalogue))
        found[name] = pair_keys[~(blank[pair_keys // len(catalogue)] | blank[pair_keys % len(catalogue)])]
        result.seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    result.pair_keys, result.mask = merge(found)
    result.seconds["merge"] = time.perf_counter() - start
    return result
