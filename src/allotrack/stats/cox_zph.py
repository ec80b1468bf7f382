"""Test of proportional hazards, R ≥ 3.0 ``cox.zph`` (survival ``cox.zph.R``; r-definitions §1.4).

For each term, the score test at (β̂, 0) for adding the covariates X·g(t), where g is the transformed event
time centred at its mean over the events: ``km`` uses g(t) = 1 − KM(t−) of the pooled, unweighted
Kaplan–Meier (with delayed entry when the data have it), ``identity`` g = t, ``log`` g = log t, ``rank`` the
ranks of the exit times. The information of the augmented model has blocks
``I_xx = Σ V``, ``I_xz = Σ g V`` and ``I_zz = Σ g² V`` (V the weighted covariance of x in the Efron or
Breslow risk set) and the score of the new columns is ``U_z = Σ g (w δ x − h a)``. Each test is
``u' I⁻¹ u`` with u = (0, U_z[term]) over the rows and columns of all x and the term's z; GLOBAL uses all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import chi2, rankdata

from allotrack.errors import InputError
from allotrack.stats._cox_engine import expand_terms

if TYPE_CHECKING:
    from allotrack.stats.cox import _Fitted


def _transform(fitted: _Fitted, transform: str) -> np.ndarray:
    """g at each subject's exit time (sorted order), before centring."""
    rs = fitted.rs
    times = rs.stop
    if transform == "identity":
        return times.copy()
    if transform == "log":
        return np.log(times)
    if transform == "rank":
        return rankdata(times)
    if transform != "km":
        raise InputError(f"transform must be 'km', 'rank', 'identity' or 'log', not {transform!r}")
    from allotrack.stats.kaplan_meier import kaplan_meier

    km = kaplan_meier(None, times, rs.event, entry=fitted.entry).curves[0]
    idx = np.searchsorted(km.time, times, side="left")  # number of KM times strictly below t
    return 1.0 - np.concatenate(([1.0], km.surv))[idx]


def zph_test(fitted: _Fitted, beta: np.ndarray, transform: str = "km") -> pd.DataFrame:
    rs, x = fitted.rs, fitted.x
    g_subject = _transform(fitted, transform)
    dpos = rs.death_pos
    g_subject = g_subject - g_subject[dpos].mean()
    g_block = g_subject[rs.block_first]  # g is a function of the block's exit time
    d = fitted.final
    terms = expand_terms(fitted.terms, d)
    risk = d.risk
    b = terms.block
    hk = np.bincount(b, weights=terms.h, minlength=rs.n_blocks)
    hfk = np.bincount(b, weights=terms.h * terms.frac, minlength=rs.n_blocks)

    def weighted_second_moment(power: int) -> np.ndarray:
        gp = g_block**power
        c = rs.over_blocks(hk * gp)
        c[dpos] -= (hfk * gp)[rs.death_block]
        rc = risk * c
        gterm = g_block[b] ** power
        return (x * rc[:, None]).T @ x - (terms.a * (terms.coef * gterm)[:, None]).T @ terms.a

    i_xx = d.information
    i_xz = weighted_second_moment(1)
    i_zz = weighted_second_moment(2)
    w_death = rs.weight[dpos]
    u_z = (w_death * g_subject[dpos]) @ x[dpos] - (terms.coef * g_block[b]) @ terms.a
    p = beta.size
    full = np.block([[i_xx, i_xz], [i_xz.T, i_zz]])
    rows, stats, dofs = [], [], []
    for name, cols in fitted.design.terms.items():
        keep = list(range(p)) + [p + j for j in cols]
        u = np.concatenate((np.zeros(p), u_z[cols]))
        stats.append(float(u @ np.linalg.solve(full[np.ix_(keep, keep)], u)))
        rows.append(name)
        dofs.append(len(cols))
    u = np.concatenate((np.zeros(p), u_z))
    stats.append(float(u @ np.linalg.solve(full, u)))
    rows.append("GLOBAL")
    dofs.append(p)
    return pd.DataFrame(
        {"chisq": stats, "df": dofs, "p": [float(chi2.sf(s, k)) for s, k in zip(stats, dofs, strict=True)]},
        index=pd.Index(rows, name="term"),
    )
