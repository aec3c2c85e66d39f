"""Lexical top-k: BM25 over normalised title tokens, as sparse matrix products (scipy).

Each query record's candidates are the k documents with the highest BM25 score for the query's
distinct tokens. Tokens found in more than `max_df(n)` documents are purged from the queries: they
say little and would make the products explode (a token in d documents costs d^2 work); with the cap
on `max_df`, a query's work does not grow with the catalogue, so the total grows linearly. Queries
run in chunks whose product size is bounded, so memory stays flat as the catalogue grows.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
from scipy import sparse

K1, B = 1.2, 0.75
PURGE_FLOOR, PURGE_FRACTION, PURGE_CAP = 100, 0.01, 1000
PRODUCT_BUDGET = 10_000_000  # nonzero (query, document) scores held at once


def max_df(documents: int) -> int:
    """Tokens in more documents than this are purged: 1% of the documents, at least 100, at most 1000."""
    return max(PURGE_FLOOR, min(int(documents * PURGE_FRACTION), PURGE_CAP))


def token_counts(token_lists: Iterable[list[str]]) -> sparse.csr_matrix:
    """A (records x vocabulary) matrix of token counts, built in typed arrays (int32 indices): 1M titles'
    trigrams are ~200M tokens, which Python lists of ints would hold in gigabytes."""
    vocabulary: dict[str, int] = {}
    indptr, indices, data = array("q", [0]), array("q"), array("f")
    for tokens in token_lists:
        counted = Counter(tokens)
        indices.extend(vocabulary.setdefault(token, len(vocabulary)) for token in counted)
        data.extend(counted.values())
        indptr.append(len(indices))
    index_type = np.int32 if len(indices) < 2**31 else np.int64
    return sparse.csr_matrix(
        (
            np.frombuffer(data, dtype=np.float32),
            np.frombuffer(indices, dtype=np.int64).astype(np.int32),
            np.frombuffer(indptr, dtype=np.int64).astype(index_type),
        ),
        shape=(len(indptr) - 1, max(len(vocabulary), 1)),
    )


def bm25(counts: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray]:
    """BM25 document weights (idf x saturated tf, length-normalised) and each token's document frequency."""
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    norm = K1 * (1 - B + B * lengths / max(lengths.mean(), 1e-9))
    tf = counts.data
    row_norm = np.repeat(norm, np.diff(counts.indptr)).astype(np.float32)
    weights = counts.copy()
    weights.data = idf[counts.indices] * tf * (K1 + 1) / (tf + row_norm)
    return weights, df


def _chunks(cost: np.ndarray) -> list[tuple[int, int]]:
    bounds, start, total = [], 0, 0.0
    for row, value in enumerate(cost):
        if total and total + value > PRODUCT_BUDGET:
            bounds.append((start, row))
            start, total = row, 0.0
        total += value
    bounds.append((start, len(cost)))
    return [b for b in bounds if b[1] > b[0]]


def top_k_rows(scores: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's k highest entries (ties: lower column), without sorting whole rows."""
    indptr, data, columns = scores.indptr, scores.data, scores.indices
    keep = np.ones(len(data), dtype=bool)
    for row in np.flatnonzero(np.diff(indptr) > k):
        lo, hi = indptr[row], indptr[row + 1]
        values = data[lo:hi]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        chosen = values > kth
        ties = np.flatnonzero(values == kth)
        chosen[ties[np.argsort(columns[lo:hi][ties], kind="stable")[: k - int(chosen.sum())]]] = True
        keep[lo:hi] = chosen
    rows = np.repeat(np.arange(scores.shape[0]), np.diff(indptr))
    return rows[keep], scores.indices[keep].astype(np.int64)


def sparse_top_k(
    query_matrix: sparse.csr_matrix,
    document_weights: sparse.csr_matrix,
    cost: np.ndarray,
    queries: range,
    documents: range,
    k: int,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k documents of each query by the product `query_matrix @ document_weights.T`, in chunks of
    queries whose summed `cost` (nonzero scores) stays under PRODUCT_BUDGET; as directed (query,
    candidate) record indices. Rows map to the record ranges `queries` and `documents`."""
    transposed = document_weights.T.tocsr()
    found_q, found_c = [], []
    for lo, hi in _chunks(cost):
        scores = query_matrix[lo:hi] @ transposed
        if queries == documents:  # a record is not its own candidate (scores are otherwise > 0)
            rows = np.repeat(np.arange(hi - lo), np.diff(scores.indptr))
            scores.data[scores.indices == rows + lo] = 0
            scores.eliminate_zeros()
        rows, columns = top_k_rows(scores, k)
        found_q.append(rows + queries.start + lo)
        found_c.append(columns + documents.start)
        if advance:
            advance(hi - lo)
    if not found_q:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(found_q), np.concatenate(found_c)


def lexical_pairs(
    counts: sparse.csr_matrix,
    queries: range,
    documents: range,
    k: int,
    advance: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k BM25 documents for each query record, as directed (query, candidate) record indices.
    `queries` and `documents` are row ranges of `counts` (the same range for dedup: no self matches)."""
    weights, df = bm25(counts[documents.start : documents.stop])
    kept = (df > 0) & (df <= max_df(len(documents)))
    query_matrix = counts[queries.start : queries.stop].copy()
    query_matrix.data = kept[query_matrix.indices].astype(np.float32)  # distinct, unpurged tokens, weight 1
    query_matrix.eliminate_zeros()
    cost = query_matrix @ df.astype(np.float64)
    return sparse_top_k(query_matrix, weights, cost, queries, documents, k, advance)
