"""R's treatment of near-tied times (``survival::aeqSurv``).

``survfit``, ``survdiff`` and ``coxph`` (``timefix=TRUE``) first merge time values that differ by less than
``sqrt(.Machine$double.eps)``, absolutely or relative to the mean absolute unique time, replacing each tie
group by its smallest member. Without this, 1.1 and 1.1 + 1e-15 would be two distinct times.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = float(np.sqrt(np.finfo(float).eps))


def merge_near_ties(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Apply ``aeqSurv`` jointly to one or more time arrays (e.g. entry and exit times).

    Returns the arrays unchanged (same objects) when no near ties exist, which is the common case.
    """
    pooled = np.unique(np.concatenate([a[np.isfinite(a)] for a in arrays]))
    merged = merge_near_ties_sorted(pooled)  # the tolerance rule lives in one place
    if merged is pooled:
        return arrays
    out = []
    for a in arrays:
        result = a.copy()
        finite = np.isfinite(a)
        result[finite] = merged[np.searchsorted(pooled, a[finite])]
        out.append(result)
    return tuple(out)


def merge_near_ties_sorted(sorted_times: np.ndarray) -> np.ndarray:
    """``aeqSurv`` for one array already sorted ascending, in O(n) without a second sort or a search.
    Returns the input object itself when nothing is merged."""
    if sorted_times.size < 2:
        return sorted_times
    step = np.diff(sorted_times)
    positive = step > 0
    dy = step[positive]  # gaps between consecutive distinct values
    if dy.size == 0:
        return sorted_times
    distinct_mean = (np.abs(sorted_times[1:][positive]).sum() + abs(sorted_times[0])) / (dy.size + 1)
    tied_gap = (dy <= TOLERANCE) | (dy / distinct_mean <= TOLERANCE)
    if not tied_gap.any():
        return sorted_times
    starts_group = np.zeros(sorted_times.size, dtype=bool)
    starts_group[0] = True
    starts_group[1:][positive] = ~tied_gap
    group_start = np.flatnonzero(starts_group)
    return np.repeat(sorted_times[group_start], np.diff(np.append(group_start, sorted_times.size)))
