"""Group ids that stay stable from one run to the next (`--previous GROUPS.parquet`).

Group ids are int64. Each new group keeps the id of a previous group it shares records with, chosen
greedily by overlap: (new group, previous group) pairs are taken by decreasing number of shared records
(ties: smaller previous id, then smaller group), each new group and each previous id at most once. Other
groups get fresh ids from the previous file's high-water mark (one past the largest id it ever issued,
kept in its metadata, or one past its largest id), so an id that disappears is never given to another group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scorer.errors import InputError
from scorer.grouping.inputs import Groups

LIST_LIMIT = 20  # entries per list in the report (counts are always complete)


@dataclass(frozen=True)
class Carried:
    """The id of each group (by group number), the next id never issued, and what changed since the previous run."""

    group_ids: np.ndarray
    next_group_id: int
    changes: dict[str, Any] | None


def _runs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (first, second) pairs, sorted by first then second, and how often each occurs."""
    if not len(first):
        return first, second, np.zeros(0, dtype=np.int64)
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    starts = np.flatnonzero(np.concatenate([[True], (first[1:] != first[:-1]) | (second[1:] != second[:-1])]))
    return first[starts], second[starts], np.diff(np.append(starts, len(first)))


def _match(new: np.ndarray, old: np.ndarray, shared: np.ndarray, groups: int) -> np.ndarray:
    """Previous id kept by each new group, -1 where none: greedy by decreasing overlap."""
    kept = [-1] * groups
    used: set[int] = set()
    order = np.lexsort((new, old, -shared))
    for g, p in zip(new[order].tolist(), old[order].tolist(), strict=True):
        if kept[g] < 0 and p not in used:
            kept[g] = p
            used.add(p)
    return np.array(kept, dtype=np.int64)


INT64_MAX = int(np.iinfo(np.int64).max)


def carry_forward(ids: pa.Array, groups: np.ndarray, previous: Groups | None) -> Carried:
    """Ids for groups numbered 0.. (`groups` per record, records in the order of `ids`)."""
    count = int(groups.max()) + 1 if len(groups) else 0
    if previous is None:
        return Carried(np.arange(count, dtype=np.int64), count, None)
    position = pc.index_in(previous.ids, value_set=ids)
    present = position.is_valid().to_numpy(zero_copy_only=False)
    records = position.filter(present).to_numpy().astype(np.int64)
    old = previous.group_ids[present]
    new = groups[records]
    pair_new, pair_old, shared = _runs(new, old)
    group_ids = _match(pair_new, pair_old, shared, count)
    fresh = group_ids < 0
    if previous.next_group_id + int(fresh.sum()) > INT64_MAX:
        raise InputError(
            f"--previous: its group ids reach {previous.next_group_id - 1:,}, leaving no room below 2**63 for "
            f"{int(fresh.sum()):,} new groups; renumber the groups file"
        )
    group_ids[fresh] = previous.next_group_id + np.arange(int(fresh.sum()))
    changes = _changes(ids, records, old, group_ids[new], group_ids, pair_new, pair_old, previous)
    changes.update(ids_kept=count - int(fresh.sum()), ids_issued=int(fresh.sum()))
    return Carried(group_ids, previous.next_group_id + int(fresh.sum()), changes)


def _changes(
    ids: pa.Array,
    records: np.ndarray,
    old: np.ndarray,
    now: np.ndarray,
    group_ids: np.ndarray,
    pair_new: np.ndarray,
    pair_old: np.ndarray,
    previous: Groups,
) -> dict[str, Any]:
    """Merges (a group holding records of several previous groups), splits (a previous group's records now in
    several groups) and moved records (a record whose group id changed)."""
    sources = np.bincount(pair_new, minlength=len(group_ids))
    merged = np.flatnonzero(sources > 1)
    merged = merged[np.argsort(-sources[merged], kind="stable")][:LIST_LIMIT]
    split_old, split_new, _ = _runs(pair_old, group_ids[pair_new])
    olds, parts = np.unique(split_old, return_counts=True)
    splits = olds[parts > 1]
    moved = np.flatnonzero(old != now)
    return {
        "records_kept": len(records),
        "records_added": len(ids) - len(records),
        "records_removed": len(previous.ids) - len(records),
        "moved_records": len(moved),
        "moved_sample": [
            {"id": ids[int(records[i])].as_py(), "from": int(old[i]), "to": int(now[i])} for i in moved[:LIST_LIMIT]
        ],
        "merges": int((sources > 1).sum()),
        "merged_groups": [
            {"group_id": int(group_ids[g]), "from": sorted(int(p) for p in pair_old[pair_new == g])} for g in merged
        ],
        "splits": len(splits),
        "split_groups": [
            {"previous_group_id": int(p), "into": sorted(int(g) for g in split_new[split_old == p])}
            for p in splits[:LIST_LIMIT]
        ],
        "ids_retired": len(np.setdiff1d(previous.group_ids, group_ids)),
    }
