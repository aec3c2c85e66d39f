"""Id pairs -> an undirected scored graph over dense record indices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Graph:
    """Records `0..n-1` (in sorted id order) and undirected edges `u < v` with one score each."""

    ids: pa.Array
    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    pairs: int
    self_pairs: int

    @property
    def n(self) -> int:
        return len(self.ids)


def encode_ids(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Distinct ids in sorted order, and each value's index among them."""
    encoded = values.dictionary_encode()
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return encoded.dictionary.take(order), rank[encoded.indices.to_numpy(zero_copy_only=False)]


def build_graph(left: list[pa.Array], right: list[pa.Array], scores: np.ndarray) -> Graph:
    """One edge per unordered pair of distinct ids; repeated pairs (either order, any file) get their mean score.

    A record that appears only in self-pairs (a, a) is kept as a record without edges.
    """
    values = pa.chunked_array(left + right).combine_chunks()
    ids, index = encode_ids(values)
    half = len(index) // 2
    a, b = index[:half], index[half:]
    distinct = a != b
    u, v = np.minimum(a, b)[distinct], np.maximum(a, b)[distinct]
    key, slot = np.unique(u * len(ids) + v, return_inverse=True)
    w = np.bincount(slot, weights=scores[distinct], minlength=len(key)) / np.bincount(slot, minlength=len(key))
    return Graph(ids, key // len(ids), key % len(ids), w, int(half), int(half - distinct.sum()))
