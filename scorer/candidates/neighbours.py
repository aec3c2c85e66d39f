"""Embedding nearest neighbours through an approximate index (faiss HNSW, inner product on unit vectors)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scorer.candidates.pairs import cap_per_query

# Graph links per vector (memory about n * (dim * 4 + 2 * M * 4) bytes). Measured on 100k MiniLM title
# vectors: M=16 finds 93% of the exact 20 nearest in 27 s (build + search, 2 cores); M=32, 96% in 63 s.
HNSW_M = 16
EF_CONSTRUCTION = 80
CHUNK = 4096  # vectors added or searched per call (progress granularity)


def knn_pairs(
    index_vectors: np.ndarray,
    index_offset: int,
    query_vectors: np.ndarray,
    query_offset: int,
    k: int,
    threads: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest indexed records of each query, as directed (query, candidate) record indices
    (offsets map array rows to record indices; a record is never its own neighbour)."""
    import faiss

    if threads:
        faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(index_vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.hnsw.efSearch = max(64, 2 * (k + 1))
    for lo in range(0, len(index_vectors), CHUNK):
        index.add(np.ascontiguousarray(index_vectors[lo : lo + CHUNK]))
        if advance:
            advance(min(CHUNK, len(index_vectors) - lo))
    width = min(k + 1, len(index_vectors))
    found_q, found_c = [], []
    for lo in range(0, len(query_vectors), CHUNK):
        scores, neighbours = index.search(np.ascontiguousarray(query_vectors[lo : lo + CHUNK]), width)
        query = np.repeat(np.arange(lo, lo + len(neighbours)) + query_offset, width)
        candidate = neighbours.ravel().astype(np.int64)
        keep = candidate >= 0
        candidate[keep] += index_offset
        keep &= candidate != query
        q, c = cap_per_query(query[keep], candidate[keep], scores.ravel()[keep], k)
        found_q.append(q)
        found_c.append(c)
        if advance:
            advance(len(neighbours))
    if not found_q:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(found_q), np.concatenate(found_c)
