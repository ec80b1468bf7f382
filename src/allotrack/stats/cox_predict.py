"""Survival curves for new covariate values from a Cox model — R ``survfit.coxph`` (``agsurv``).

Baseline cumulative hazard with the tie method of the fit (Efron: Σ_j (W/m)/denom_j; Breslow: W/S0), per
stratum. For a new row z (centred at the fit's weighted means) with risk r = exp(z'β):
``H(t|z) = r·H0(t)``, ``Var H = r² (Σ (W/m)/denom² + d(t)' V d(t))`` with ``d(t) = Σ h·(a − z)`` (R's
``varh`` and ``xbar`` terms), ``S = exp(−H)``, log-scale limits ``S·exp(∓ z_α se)`` (upper capped at 1),
and ``std_err`` the SE of S (``summary.survfit``). Values at a time are those of the last death ≤ t.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from allotrack.errors import InputError
from allotrack.stats._cox_engine import expand_terms, sum_by_block
from allotrack.stats._design import new_rows

if TYPE_CHECKING:
    from allotrack.stats.cox import _Fitted


def predict_survival(
    fitted: _Fitted,
    beta: np.ndarray,
    var: np.ndarray,
    newdata: Any,
    times: Sequence[float] | np.ndarray,
    conf_level: float,
) -> pd.DataFrame:
    req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
    if np.isnan(req).any() or (req < 0).any():
        raise InputError("prediction times must be non-negative numbers", column="times")
    frame = newdata if isinstance(newdata, pd.DataFrame) else pd.DataFrame(newdata)
    z = new_rows(fitted.design, frame) - fitted.means
    rs = fitted.rs
    if fitted.strata_labels is not None:
        if fitted.strata_name not in frame.columns:
            raise InputError(f"newdata needs the strata column '{fitted.strata_name}'")
        lookup = {label: k for k, label in enumerate(fitted.strata_labels)}
        try:
            zstrata = np.array([lookup[v] for v in frame[fitted.strata_name]])
        except KeyError as err:
            raise InputError(f"newdata has a stratum not in the fit: {err.args[0]!r}") from err
    else:
        zstrata = np.zeros(len(frame), dtype=np.intp)
    terms = expand_terms(fitted.terms, fitted.final)
    b = terms.block
    hk = np.bincount(b, weights=terms.h, minlength=rs.n_blocks)
    vk = np.bincount(b, weights=terms.h**2 / terms.coef, minlength=rs.n_blocks)
    ak = sum_by_block(b, terms.h[:, None] * terms.a, rs.n_blocks)
    zq = norm.ppf(1 - (1 - conf_level) / 2)
    out = []
    for i in range(z.shape[0]):
        blocks = np.flatnonzero(rs.block_stratum == zstrata[i])
        cum_h = np.cumsum(hk[blocks])
        cum_v = np.cumsum(vk[blocks])
        cum_a = np.cumsum(ak[blocks], axis=0)
        last = np.searchsorted(rs.block_time[blocks], req, side="right") - 1
        risk = float(np.exp(z[i] @ beta))
        h0 = np.where(last >= 0, cum_h[np.maximum(last, 0)], 0.0)
        v0 = np.where(last >= 0, cum_v[np.maximum(last, 0)], 0.0)
        xbar = np.where((last >= 0)[:, None], cum_a[np.maximum(last, 0)], 0.0)
        dvec = xbar - h0[:, None] * z[i]
        se = np.sqrt(v0 + np.einsum("ij,jk,ik->i", dvec, var, dvec)) * risk
        cumhaz = h0 * risk
        surv = np.exp(-cumhaz)
        out.append(
            pd.DataFrame(
                {
                    "row": i,
                    "time": req,
                    "cumhaz": cumhaz,
                    "survival": surv,
                    "std_err": surv * se,
                    "lower": surv * np.exp(-zq * se),
                    "upper": np.minimum(surv * np.exp(zq * se), 1.0),
                }
            )
        )
    return pd.concat(out, ignore_index=True)
