"""Harrell's concordance of a Cox model as R reports it (``coxph``'s ``concordance``, ``timewt="n"``).

For every event i at time t and every subject j of the same stratum at risk at t that did not die at t
(``start_j < t ≤ stop_j``; censored at t counts as surviving longer), the pair is concordant when
``η_i > η_j``, discordant when ``η_i < η_j`` and tied when equal, each pair weighted ``w_i w_j``;
``C = (concordant + tied/2) / (concordant + discordant + tied)``.

Counting uses a bottom-up merge sort over the subjects in processing order (stratum, time descending):
each level counts, for every event, the earlier subjects with a smaller or equal linear predictor by
binary search — O(n log² n) in numpy, never O(n²).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from allotrack.stats.cox import _Fitted


def _earlier_counts(key: np.ndarray, point_weight: np.ndarray, is_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position q (in array order) with ``is_query``, the point weight at positions < q whose
    key is smaller, and equal. Keys are non-negative integers."""
    n = key.size
    smaller = np.zeros(n)
    equal = np.zeros(n)
    span = np.int64(key.max()) + 1 if n else np.int64(1)
    perm = np.arange(n)
    pos = np.arange(n)
    b = 1
    while b < n:
        pair = (pos // (2 * b)).astype(np.int64)
        left = (pos // b) % 2 == 0
        items = perm
        left_items = items[left]
        left_keys = pair[left] * span + key[left_items]
        cw = np.concatenate(([0.0], np.cumsum(point_weight[left_items])))
        right_pos = np.flatnonzero(~left)
        right_items = items[right_pos]
        q = is_query[right_items]
        if q.any():
            qi = right_items[q]
            qpair = pair[right_pos[q]]
            qkeys = qpair * span + key[qi]
            base = np.searchsorted(left_keys, qpair * span, side="left")
            lo = np.searchsorted(left_keys, qkeys, side="left")
            hi = np.searchsorted(left_keys, qkeys, side="right")
            smaller[qi] += cw[lo] - cw[base]
            equal[qi] += cw[hi] - cw[lo]
        merged_keys = pair * span + key[perm]
        perm = perm[np.argsort(merged_keys, kind="stable")]
        b *= 2
    return smaller, equal


def _pair_counts(
    time: np.ndarray,
    tie_rank: np.ndarray,
    is_point: np.ndarray,
    is_query: np.ndarray,
    stratum: np.ndarray,
    eta_rank: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: weighted counts of earlier points (same stratum) with smaller / equal / any η, where
    "earlier" is the order (stratum asc, time desc, tie_rank asc)."""
    order = np.lexsort((tie_rank, -time, stratum))
    n_eta = np.int64(eta_rank.max()) + 1
    key = stratum[order].astype(np.int64) * n_eta + eta_rank[order]
    pw = np.where(is_point[order], weight[order], 0.0)
    qmask = is_query[order]
    smaller, equal = _earlier_counts(key, pw, qmask)
    # remove points of lower strata (their keys are all smaller) and count all earlier points of the stratum
    s_sorted = stratum[order]
    cum = np.concatenate(([0.0], np.cumsum(pw)))
    first_of_stratum = np.searchsorted(s_sorted, s_sorted, side="left")
    before_stratum = cum[first_of_stratum]
    total = cum[np.arange(order.size)] - before_stratum
    smaller = smaller - before_stratum
    out_s, out_e, out_t = (np.empty(order.size) for _ in range(3))
    out_s[order], out_e[order], out_t[order] = smaller, equal, total
    return out_s, out_e, out_t


def concordance_counts(
    stop: np.ndarray,
    event: np.ndarray,
    eta: np.ndarray,
    weight: np.ndarray,
    stratum: np.ndarray,
    entry: np.ndarray | None = None,
) -> dict[str, float]:
    """Weighted concordant, discordant and tied-in-η pair counts (R ``concordance`` definitions)."""
    n = stop.size
    eta_rank = np.unique(eta, return_inverse=True)[1].astype(np.int64)
    dead = event > 0
    # items 0..n-1: subjects as points; items n..2n-1: events as queries
    # tie order at equal time: censored points (0), queries (1), death points (2)
    time = np.concatenate((stop, stop))
    tie = np.concatenate((np.where(dead, 2, 0), np.ones(n, dtype=np.int64)))
    is_point = np.concatenate((np.ones(n, bool), np.zeros(n, bool)))
    is_query = np.concatenate((np.zeros(n, bool), dead))
    s2 = np.concatenate((stratum, stratum))
    r2 = np.concatenate((eta_rank, eta_rank))
    w2 = np.concatenate((weight, weight))
    sm, eq, tot = _pair_counts(time, tie, is_point, is_query, s2, r2, w2)
    sm, eq, tot = sm[n:], eq[n:], tot[n:]
    if entry is not None:
        # subjects entering at or after t are not at risk at t: subtract them (entries first at ties)
        time = np.concatenate((entry, stop))
        tie = np.concatenate((np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)))
        sm2, eq2, tot2 = _pair_counts(time, tie, is_point, is_query, s2, r2, w2)
        sm, eq, tot = sm - sm2[n:], eq - eq2[n:], tot - tot2[n:]
    wq = weight * dead
    concordant = float(np.sum(wq * sm))
    tied = float(np.sum(wq * eq))
    discordant = float(np.sum(wq * (tot - sm - eq)))
    return {"concordant": concordant, "discordant": discordant, "tied_x": tied}


def cox_concordance(fitted: _Fitted, beta: np.ndarray) -> float:
    rs = fitted.rs
    # Row by row with the same operations, so equal covariate rows get bit-identical predictors and count as tied
    # (a BLAS matrix-vector product may round rows differently by position; that broke ties on some builds).
    risk = (np.ascontiguousarray(fitted.x) * beta).sum(axis=1)
    counts = concordance_counts(rs.stop, rs.event, risk, rs.weight, rs.stratum, fitted.entry)
    total = counts["concordant"] + counts["discordant"] + counts["tied_x"]
    return (counts["concordant"] + counts["tied_x"] / 2) / total
