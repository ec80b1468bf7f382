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
    if pooled.size < 2:
        return arrays
    dy = np.diff(pooled)
    tied = (dy <= TOLERANCE) | (dy / np.mean(np.abs(pooled)) <= TOLERANCE)
    if not tied.any():
        return arrays
    cuts = pooled[np.concatenate(([True], ~tied))]
    out = []
    for a in arrays:
        idx = np.searchsorted(cuts, a, side="right") - 1
        merged = a.copy()
        finite = np.isfinite(a)
        merged[finite] = cuts[idx[finite]]
        out.append(merged)
    return tuple(out)


def merge_near_ties_sorted(sorted_times: np.ndarray) -> np.ndarray:
    """``aeqSurv`` for one array already sorted ascending (no second sort). Returns the input if untouched."""
    if sorted_times.size < 2:
        return sorted_times
    step = np.diff(sorted_times)
    is_new = step > 0
    unique = sorted_times[np.concatenate(([True], is_new))]
    if unique.size < 2:
        return sorted_times
    dy = np.diff(unique)
    tied = (dy <= TOLERANCE) | (dy / np.mean(np.abs(unique)) <= TOLERANCE)
    if not tied.any():
        return sorted_times
    cuts = unique[np.concatenate(([True], ~tied))]
    idx = np.searchsorted(cuts, sorted_times, side="right") - 1
    return cuts[idx]
