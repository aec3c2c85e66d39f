"""What the groups look like: per-group edge statistics, sizes, and what the clustering cut."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scorer.grouping.cluster import Clustering
from scorer.grouping.edges import Graph


@dataclass(frozen=True)
class GroupStats:
    """Per group (indexed by group number): size and, over the scored pairs inside it, min / mean score and the
    share of its record pairs scoring at least the threshold (NaN for singletons)."""

    size: np.ndarray
    min_score: np.ndarray
    mean_score: np.ndarray
    density: np.ndarray


def group_stats(graph: Graph, groups: np.ndarray, threshold: float) -> GroupStats:
    size = np.bincount(groups)
    inside = groups[graph.u] == groups[graph.v]
    order = np.argsort(groups[graph.u][inside], kind="stable")
    g, w = groups[graph.u][inside][order], graph.w[inside][order]
    minimum = np.full(len(size), np.nan)
    if len(g):
        starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
        minimum[g[starts]] = np.minimum.reduceat(w, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=w, minlength=len(size)) / np.bincount(g, minlength=len(size))
        density = np.bincount(g, weights=w >= threshold, minlength=len(size)) / (size * (size - 1) / 2)
    return GroupStats(size, minimum, mean, np.where(size > 1, density, np.nan))


def size_histogram(size: np.ndarray) -> dict[str, int]:
    """Number of groups of each size."""
    counts = np.bincount(size)
    return {str(k): int(counts[k]) for k in np.flatnonzero(counts)}


def cuts(graph: Graph, clustering: Clustering, threshold: float, max_size: int) -> dict[str, Any]:
    """What average linkage and the size cap cut, against plain connected components at the same threshold."""
    groups, comp = clustering.groups, clustering.components
    size = np.bincount(groups)
    n = max(len(size), 1)
    between = groups[graph.u] != groups[graph.v]
    cut = between & (graph.w >= threshold)
    ga, gb = groups[graph.u][between], groups[graph.v][between]
    key, slot = np.unique(np.minimum(ga, gb) * n + np.maximum(ga, gb), return_inverse=True)
    first, second = size[key // n], size[key % n]
    average = np.bincount(slot, weights=graph.w[between], minlength=len(key)) / (first * second)
    groups_per_component = np.bincount(comp[np.unique(groups, return_index=True)[1]])
    return {
        "components": len(groups_per_component),
        "largest_component": int(np.bincount(comp).max(initial=0)),
        "components_split": int((groups_per_component > 1).sum()),
        "matching_edges": int((graph.w >= threshold).sum()),
        "matching_edges_cut": int(cut.sum()),
        "max_cut_edge_score": float(graph.w[cut].max()) if cut.any() else None,
        "linkage_rounds": clustering.linkage_rounds,
        "refine_rounds": clustering.refine_rounds,
        "records_moved_by_refinement": clustering.moves,
        "max_group_size": max_size,
        "merges_refused_by_cap": int(((average >= threshold) & (first + second > max_size)).sum()),
    }
