"""Directed candidate lists capped at k per record, and their merge into unordered pairs.

Records are numbered 0..n-1 over all catalogues (in link mode the left catalogue first), so an
unordered pair (a, b) with a < b is stored as the int64 key a * n + b.

>>> import numpy as np
>>> q, c = cap_per_query(np.array([0, 0, 0, 1]), np.array([1, 2, 3, 0]), np.array([3.0, 1.0, 2.0, 0.0]), 2)
>>> q.tolist(), c.tolist()
([0, 0, 1], [1, 3, 0])
>>> lexical, keys = unordered_keys(q, c, n=4), unordered_keys(np.array([3]), np.array([0]), n=4)
>>> lexical.tolist(), keys.tolist()  # pairs (0, 1), (0, 3), (1, 0) = (0, 1); (3, 0) = (0, 3)
([1, 3], [3])
>>> pair_keys, mask = merge({"lexical": lexical, "keys": keys})
>>> pair_keys.tolist(), mask.tolist()  # pairs (0, 1) by lexical; (0, 3) by lexical and keys
([1, 3], [1, 3])
"""

from __future__ import annotations

import numpy as np

GENERATORS = ("lexical", "keys", "embedding", "trigram")  # bit i of a mask = GENERATORS[i]


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort, faster here than `np.unique`'s hash path on 10M+ int64)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in `sorted_values` (binary search; `np.isin` is far slower at this size)."""
    if not len(sorted_values):
        return np.zeros(len(queries), dtype=bool)
    positions = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[positions] == queries


def top_per_query(query: np.ndarray, candidate: np.ndarray, rank_key: np.ndarray, k: int) -> np.ndarray:
    """Positions of each query's k distinct candidates with the highest `rank_key` (ties: lower candidate),
    sorted by query."""
    if len(query) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((candidate, -rank_key, query))
    # first occurrence of each (query, candidate): stable unique over the sorted order
    seen = np.unique(query[order].astype(np.int64) * (int(candidate.max()) + 1) + candidate[order], return_index=True)[
        1
    ]
    order = order[np.sort(seen)]
    starts = np.searchsorted(query[order], query[order], side="left")
    return order[np.arange(len(order)) - starts < k]


def cap_per_query(query: np.ndarray, candidate: np.ndarray, rank_key: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Keep, per query, its k distinct candidates with the highest `rank_key` (ties: lower candidate)."""
    kept = top_per_query(query, candidate, rank_key, k)
    return query[kept].astype(np.int64), candidate[kept].astype(np.int64)


def block_pairs(codes: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair of distinct positions within each block: members sharing a code, as
    (member, partner, block size) arrays. Costs the sum of squared block sizes."""
    order = np.argsort(codes, kind="stable")
    codes, members = codes[order], members[order]
    start = np.searchsorted(codes, codes, side="left")
    size = np.searchsorted(codes, codes, side="right") - start
    total = int(size.sum())
    member_pos = np.repeat(np.arange(len(members)), size)
    partner_pos = np.repeat(start, size) + np.arange(total) - np.repeat(np.cumsum(size) - size, size)
    keep = member_pos != partner_pos
    return members[member_pos[keep]], members[partner_pos[keep]], size[member_pos[keep]]


def unordered_keys(query: np.ndarray, candidate: np.ndarray, n: int) -> np.ndarray:
    """Sorted distinct unordered pair keys (a * n + b, a < b) of directed pairs; self-pairs are dropped."""
    low, high = np.minimum(query, candidate), np.maximum(query, candidate)
    return sorted_unique((low * n + high)[low != high])


def merge(keys_by_generator: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Union of every generator's sorted unordered pair keys, and a bit mask per key telling which generators
    (bit i = GENERATORS[i]) proposed it."""
    keys = list(keys_by_generator.values())
    flags = [np.full(len(k), 1 << GENERATORS.index(name), dtype=np.int8) for name, k in keys_by_generator.items()]
    all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    if not len(all_keys):
        return all_keys, np.zeros(0, dtype=np.int8)
    all_flags = np.concatenate(flags)
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_flags = all_keys[order], all_flags[order]
    starts = np.flatnonzero(np.concatenate(([True], all_keys[1:] != all_keys[:-1])))
    return all_keys[starts], np.bitwise_or.reduceat(all_flags, starts)
