"""Average linkage with a merge threshold and a size cap, linear in memory.

Clusters merge while the mean score over all record pairs between them is at least the threshold, a pair
never scored counting as 0, and the merged size fits the cap. Mostly vectorised: in each round every
cluster finds its best neighbour and mutual best pairs merge (reciprocal nearest neighbours: for a reducible
linkage such as average linkage, the same merges as the greedy algorithm). A cluster left without a
neighbour at the threshold never gets one (a merged neighbour's average is a weighted mean of its parts'),
so its edges leave the rounds. Chains whose scores fall monotonically along them merge one pair per round;
when a round merges few clusters, the rest is finished by the greedy algorithm over a heap.
"""

from __future__ import annotations

import heapq

import numpy as np

SLOW_ROUND = 32  # a round merging fewer than 1 in this many active clusters hands over to the heap


def _aggregate(a: np.ndarray, b: np.ndarray, s: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the scores of repeated cluster pairs (a < b)."""
    key, slot = np.unique(a * n + b, return_inverse=True)
    return key // n, key % n, np.bincount(slot, weights=s, minlength=len(key))


def greedy_merges(
    a: np.ndarray, b: np.ndarray, s: np.ndarray, size: np.ndarray, threshold: float, max_size: int
) -> list[tuple[int, int]]:
    """Merges (kept, absorbed) of the greedy algorithm, best average first; the smaller cluster id is kept."""
    neighbours: dict[int, dict[int, float]] = {}
    for x, y, total in zip(a.tolist(), b.tolist(), s.tolist(), strict=True):
        neighbours.setdefault(x, {})[y] = total
        neighbours.setdefault(y, {})[x] = total
    sizes = {x: int(size[x]) for x in neighbours}

    def entry(x: int, y: int, total: float) -> tuple[float, int, int] | None:
        average = total / (sizes[x] * sizes[y])
        ok = average >= threshold and sizes[x] + sizes[y] <= max_size
        return (-average, min(x, y), max(x, y)) if ok else None

    heap = [e for x, y, total in zip(a.tolist(), b.tolist(), s.tolist(), strict=True) if (e := entry(x, y, total))]
    heapq.heapify(heap)
    merges = []
    while heap:
        key, x, y = heapq.heappop(heap)
        if x not in sizes or y not in sizes or entry(x, y, neighbours[x].get(y, 0.0)) != (key, x, y):
            continue  # stale: a side merged since, or its average changed
        for z, total in neighbours.pop(y).items():
            del neighbours[z][y]
            if z != x:
                neighbours[x][z] = neighbours[z][x] = neighbours[x].get(z, 0.0) + total
        sizes[x] += sizes.pop(y)
        merges.append((x, y))
        for z, total in neighbours[x].items():
            if e := entry(x, z, total):
                heapq.heappush(heap, e)
    return merges


def average_linkage(
    n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray, threshold: float, max_size: int
) -> tuple[np.ndarray, int]:
    """Root (smallest record) of every record's cluster, and the number of vectorised rounds.

    >>> u, v, w = np.array([0, 0, 1, 2, 3, 3, 4]), np.array([1, 2, 2, 3, 4, 5, 5]), np.full(7, 0.9)
    >>> average_linkage(6, u, v, w, 0.5, 100)[0].tolist()  # two triangles joined by the edge 2-3
    [0, 0, 0, 3, 3, 3]
    """
    root = np.arange(n)
    size = np.ones(n, dtype=np.int64)
    a, b, s = u, v, w.astype(np.float64)
    rounds = 0
    while len(a):
        average = s / (size[a] * size[b])
        ok = (average >= threshold) & (size[a] + size[b] <= max_size)
        if not ok.any():
            break
        rounds += 1
        x, y = np.concatenate([a[ok], b[ok]]), np.concatenate([b[ok], a[ok]])
        order = np.lexsort((y, -np.concatenate([average[ok], average[ok]]), x))
        x, y = x[order], y[order]
        head = np.concatenate([[True], x[1:] != x[:-1]])
        best = np.full(n, -1)
        best[x[head]] = y[head]
        active = x[head]
        mutual = (best[best[active]] == active) & (active < best[active])
        parent = np.arange(n)
        if mutual.sum() * SLOW_ROUND < len(active):
            for kept, absorbed in reversed(greedy_merges(a, b, s, size, threshold, max_size)):
                parent[absorbed] = parent[kept]
            return parent[root], rounds
        winners, losers = active[mutual], best[active][mutual]
        parent[losers] = winners
        size[winners] += size[losers]
        root = parent[root]
        live = (best[a] >= 0) & (best[b] >= 0)
        a, b, s = parent[a[live]], parent[b[live]], s[live]
        inner = a != b
        a, b, s = _aggregate(np.minimum(a, b)[inner], np.maximum(a, b)[inner], s[inner], n)
    return root, rounds
