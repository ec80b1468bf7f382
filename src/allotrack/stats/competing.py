"""Cumulative incidence (Aalen–Johansen) with cmprsk's variance, and Gray's k-sample test.

Definitions (``reference/r-definitions.md`` §1.6–1.7; Gray, Ann Stat 1988;16:1141–54; R ``cmprsk::cuminc``):

* per group, with S the all-cause Kaplan–Meier and distinct times u: ``F_c(u) = Σ_{s ≤ u} S(s−) d_c(s)/n(s)``;
* variance (Aalen-type delta method with cmprsk's tie correction), evaluated at each cause-c time t:
  ``V(t) = Σ_{s≤t} w_c(s) [1 + (F(s) − F(t))/S(s)]² + Σ_{s≤t} w_o(s) [(F(s) − F(t))/S(s)]²`` with
  ``w(s) = S(s−)² d(s)/n(s)² · (1 − (d(s) − 1)/(n(s) − 1))`` for the cause (c) and all other causes (o) pooled;
  other-cause terms are skipped where S(s) = 0. Expanding the squares turns V into three cumulative sums, so
  every time costs O(1) after one sort;
* intervals: ``log-log`` (default, tidycmprsk / Pintilie): ``F^exp(±z·se/(F·log F))``; ``log``:
  ``F·exp(±z·se/F)`` capped at 1; ``plain``: ``F ± z·se`` clipped to [0, 1]; all on cmprsk's variance;
* ``.at(times)`` follows ``timepoints``: the value just after each time, NaN (R's NA) beyond the group's
  last follow-up;
* Gray's test: the score ``Σ_t W(t)[d_1k − d_1· R_k/R·]`` (``R_k = n_k (1 − F_k(t−))/S_k(t−)``,
  ``W = (1 − F̂(t−))^rho`` with F̂ the pooled estimate) and Gray's asymptotic variance with cmprsk's tie
  corrections, summed over strata; ``χ² = s' V⁻¹ s`` on K − 1 df. The per-time, per-group contributions are
  formed as arrays (times × groups × groups), never looped over in Python.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats import _input
from allotrack.stats._events import cause_array, resolve_cause
from allotrack.stats.results import Result

__all__ = ["CumulativeIncidence", "GrayTest", "cumulative_incidence", "gray_test"]

CIF_CONF_TYPES = ("log-log", "log", "plain")


@dataclass(frozen=True)
class _CifCurve:
    group: Any
    cause: Any
    time: np.ndarray  # distinct times of this cause's events in the group
    n_risk: np.ndarray
    n_event: np.ndarray
    estimate: np.ndarray
    variance: np.ndarray
    last_time: float  # last follow-up in the group


@dataclass(frozen=True, repr=False)
class CumulativeIncidence(Result):
    """Cumulative incidence of every cause in every group. ``table``: group, cause, time, n_risk, n_event,
    estimate, variance, std_err, lower, upper (one row per distinct time of an event of that cause)."""

    table: pd.DataFrame
    causes: list[Any]
    groups: list[Any]
    conf_type: str
    conf_level: float
    curves: tuple[_CifCurve, ...] = field(repr=False)
    all_cause: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] = field(repr=False, default=())

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def at(self, times: Sequence[float] | np.ndarray | float) -> pd.DataFrame:
        """Estimate, variance and CI at chosen times (cmprsk ``timepoints``): right-continuous, NaN beyond the
        group's last follow-up (R gives NA there)."""
        req = np.sort(np.unique(np.atleast_1d(np.asarray(times, dtype=float))))
        if np.isnan(req).any() or (req < 0).any():
            raise InputError("times for .at() must be non-negative numbers", column="times")
        frames = []
        for c in self.curves:
            idx = np.searchsorted(c.time, req, side="right") - 1
            est_ext = np.concatenate(([0.0], c.estimate))  # 0 before the first event (or if there is none)
            var_ext = np.concatenate(([0.0], c.variance))
            est, var = est_ext[idx + 1], var_ext[idx + 1]
            beyond = req > c.last_time
            est[beyond] = np.nan
            var[beyond] = np.nan
            lower, upper = cif_confint(est, var, self.conf_type, self.conf_level)
            frames.append(
                pd.DataFrame(
                    {"group": c.group, "cause": c.cause, "time": req, "estimate": est, "variance": var,
                     "std_err": np.sqrt(var), "lower": lower, "upper": upper}
                )
            )  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def plot(self, **kwargs: Any) -> Any:
        """CIF curves per cause and group (see :func:`allotrack.report.figures.plot_cumulative_incidence`)."""
        from allotrack.report.figures import plot_cumulative_incidence

        return plot_cumulative_incidence(self, **kwargs)


def cif_confint(est: np.ndarray, var: np.ndarray, conf_type: str, conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    z = norm.ppf(1 - (1 - conf_level) / 2)
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log-log":
            shift = np.exp(z * se / (est * np.log(est)))
            a, b = est**shift, est ** (1 / shift)
            lower, upper = np.minimum(a, b), np.maximum(a, b)
        elif conf_type == "log":
            lower = est * np.exp(-z * se / est)
            upper = np.minimum(est * np.exp(z * se / est), 1.0)
        else:
            lower = np.maximum(est - z * se, 0.0)
            upper = np.minimum(est + z * se, 1.0)
    # degenerate ends: an estimate of 0 (or 1) with no variance has the point itself as its interval
    for bound in (lower, upper):
        bound[(est == 0) & (var == 0)] = 0.0
        bound[(est == 1) & (var == 0)] = 1.0
    return lower, upper


def _group_counts(time: np.ndarray, code: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times, numbers at risk and event counts per cause (columns 1..k; column 0 censored)."""
    order = np.argsort(time, kind="stable")
    t, c = time[order], code[order]
    first = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
    tidx = np.repeat(np.arange(first.size), np.diff(np.append(first, t.size)))
    counts = np.bincount(tidx * (k + 1) + c, minlength=first.size * (k + 1)).reshape(first.size, k + 1)
    n_risk = t.size - first
    return t[first], n_risk.astype(float), counts.astype(float)


def _tie_factor(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d > 1, 1 - (d - 1) / (n - 1), 1.0)


def _ij_variance(time: np.ndarray, code: np.ndarray, cause: int, at_times: np.ndarray) -> np.ndarray:
    """Infinitesimal-jackknife variance of the Aalen–Johansen CIF (R ``survfit`` multi-state default SE).

    Subject i's influence on F(t) is a_i(t) − F(t)·b_i(t) with
    a_i(t) = Σ_{u≤t} [S(u−) ∂h_c(u)/∂w_i + ∂h(u)/∂w_i · F(u)/(1 − h(u))], b_i(t) = Σ_{u≤t} ∂h(u)/∂w_i/(1 − h(u)),
    ∂h(u)/∂w_i = (dN_i(u) − h(u) Y_i(u))/n(u). Everyone still at risk after t shares one value; those whose
    time is ≤ t have fixed (α_i, β_i); so V(t) = Σ_{T_i≤t}(α_i − F β_i)² + n(t+)·(A − F B)² by cumulative sums.
    """
    order = np.argsort(time, kind="stable")
    t, c = time[order], code[order]
    ut, first = np.unique(t, return_index=True)
    idx = np.searchsorted(ut, t)
    n = (t.size - first).astype(float)
    ev = (c > 0).astype(float)
    evc = (c == cause).astype(float)
    h = np.bincount(idx, weights=ev, minlength=ut.size) / n
    hc = np.bincount(idx, weights=evc, minlength=ut.size) / n
    surv = np.cumprod(1 - h)
    s_minus = np.concatenate(([1.0], surv[:-1]))
    f = np.cumsum(s_minus * hc)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(h < 1, 1 / (1 - h), 0.0)
    a_cum = np.cumsum(s_minus * (-hc / n) + (-h / n) * f * inv)
    b_cum = np.cumsum((-h / n) * inv)
    alpha = a_cum[idx] + s_minus[idx] * evc / n[idx] + (ev / n[idx]) * f[idx] * inv[idx]
    beta = b_cum[idx] + (ev / n[idx]) * inv[idx]
    k = np.searchsorted(ut, at_times, side="right") - 1
    done = np.searchsorted(t, at_times, side="right")  # subjects with T_i ≤ t
    cum = [np.concatenate(([0.0], np.cumsum(x))) for x in (alpha**2, alpha * beta, beta**2)]
    ft = f[k]
    fixed = cum[0][done] - 2 * ft * cum[1][done] + ft**2 * cum[2][done]
    shared = (t.size - done) * (a_cum[k] - ft * b_cum[k]) ** 2
    return fixed + shared


def _cif_curves(
    group: Any, time: np.ndarray, code: np.ndarray, causes: list[Any], variance: str = "cmprsk"
) -> list[_CifCurve]:
    k = len(causes)
    ut, n, counts = _group_counts(time, code, k)
    d_all = counts[:, 1:].sum(axis=1)
    surv = np.cumprod(1 - d_all / n)
    s_minus = np.concatenate(([1.0], surv[:-1]))
    out = []
    for c in range(1, k + 1):
        dc = counts[:, c]
        do = d_all - dc
        f = np.cumsum(s_minus * dc / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_s = np.where(surv > 0, 1 / surv, 0.0)
        w_c = np.where(dc > 0, s_minus**2 * _tie_factor(dc, n) * dc / n**2, 0.0)
        w_o = np.where((do > 0) & (surv > 0), s_minus**2 * _tie_factor(do, n) * do / n**2, 0.0)
        # V(t) = Σ w_c (a − F(t) inv_s)² + Σ w_o (F inv_s − F(t) inv_s)², a = 1 + F·inv_s
        a_c = 1 + f * inv_s
        b_o = f * inv_s
        v1 = np.cumsum(w_c * a_c**2 + w_o * b_o**2)
        v2 = np.cumsum(w_c * a_c * inv_s + w_o * b_o * inv_s)
        v3 = np.cumsum((w_c + w_o) * inv_s**2)
        var = v1 + f**2 * v3 - 2 * f * v2
        at_c = dc > 0
        if variance == "ij":
            var = np.zeros_like(f)
            var[at_c] = _ij_variance(time, code, c, ut[at_c])
        out.append(
            _CifCurve(
                group=group, cause=causes[c - 1], time=ut[at_c], n_risk=n[at_c], n_event=dc[at_c],
                estimate=f[at_c], variance=np.maximum(var[at_c], 0.0), last_time=float(ut[-1]),
            )
        )  # fmt: skip
    return out


def _prepare(
    data: Any, time: _input.ColumnSpec, event: _input.ColumnSpec, censor: Any
) -> tuple[np.ndarray, np.ndarray, list[Any], str]:
    t = _input.time_array(data, time, "time")
    codes, causes = cause_array(data, event, censor)
    _input.n_rows({"time": t, "event": codes})
    col = _input.column_name(event, "event")
    if not causes:
        raise InputError(f"no events: every row has the censoring value {censor!r}", column=col)
    return t, codes, causes, col


def cumulative_incidence(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    by: _input.ColumnSpec | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    censor: Any = 0,
    variance: str = "cmprsk",
) -> CumulativeIncidence:
    """Cumulative incidence functions of all causes, by group (R ``cmprsk::cuminc(ftime, fstatus, group)``).

    ``event`` holds 0 (or the ``censor`` value) for censored rows and a code or label per cause.
    ``variance="cmprsk"`` (default) is cuminc's Aalen-type variance; ``variance="ij"`` is the infinitesimal
    jackknife that R ``survfit(Surv(time, factor(event)) ~ by)`` reports — with ``conf_type="log"`` the
    intervals are survfit's Aalen–Johansen intervals.
    """
    if variance not in ("cmprsk", "ij"):
        raise InputError(f"variance must be 'cmprsk' or 'ij', not {variance!r}")
    if conf_type not in CIF_CONF_TYPES:
        raise InputError(f"conf_type must be one of {CIF_CONF_TYPES}, not {conf_type!r}")
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie strictly between 0 and 1, not {conf_level!r}")
    t, codes, causes, _ = _prepare(data, time, event, censor)
    if by is None:
        g, labels = np.zeros(t.size, dtype=np.intp), ["all"]
    else:
        g, labels = _input.group_array(data, by, "by")
        _input.n_rows({"time": t, "by": g})
    curves: list[_CifCurve] = []
    all_cause = []
    for j, label in enumerate(labels):
        rows = g == j
        curves.extend(_cif_curves(label, t[rows], codes[rows], causes, variance))
        ut, n, counts = _group_counts(t[rows], codes[rows], len(causes))
        all_cause.append((ut, n, np.cumprod(1 - counts[:, 1:].sum(axis=1) / n)))
    # order as cmprsk: cause-major, then group
    curves.sort(key=lambda c: (causes.index(c.cause), labels.index(c.group)))
    frames = []
    for c in curves:
        lower, upper = cif_confint(c.estimate, c.variance, conf_type, conf_level)
        frames.append(
            pd.DataFrame(
                {"group": c.group, "cause": c.cause, "time": c.time, "n_risk": c.n_risk, "n_event": c.n_event,
                 "estimate": c.estimate, "variance": c.variance, "std_err": np.sqrt(c.variance),
                 "lower": lower, "upper": upper}
            )
        )  # fmt: skip
    table = pd.concat(frames, ignore_index=True)
    return CumulativeIncidence(
        table=table, causes=causes, groups=labels, conf_type=conf_type, conf_level=conf_level,
        curves=tuple(curves), all_cause=tuple(all_cause),
    )  # fmt: skip


@dataclass(frozen=True, repr=False)
class GrayTest(Result):
    """Gray's test for one cause: ``statistic`` on ``dof`` df, ``p_value``; ``score`` and ``variance`` for the
    first K − 1 groups. ``rank_deficient`` is True when the variance is singular (cmprsk then reports
    stat = −1); statistic and p-value are NaN in that case and a warning is issued."""

    cause: Any
    statistic: float
    dof: int
    p_value: float
    rho: float
    groups: list[Any]
    score: np.ndarray
    variance: np.ndarray
    rank_deficient: bool

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"cause": [self.cause], "statistic": [self.statistic], "dof": [self.dof], "p_value": [self.p_value]}
        )


def _gray_stratum(
    time: np.ndarray, code: np.ndarray, g: np.ndarray, n_groups: int, cause: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score (K−1) and variance (K−1 × K−1) contributions of one stratum (Gray 1988; cmprsk ``crst``)."""
    order = np.argsort(time, kind="stable")
    t, c, gg = time[order], code[order], g[order]
    first = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
    tidx = np.repeat(np.arange(first.size), np.diff(np.append(first, t.size)))
    kind = np.where(c == cause, 1, np.where(c > 0, 2, 0))
    cnt = np.bincount((tidx * n_groups + gg) * 3 + kind, minlength=first.size * n_groups * 3)
    cnt = cnt.reshape(first.size, n_groups, 3).astype(float)
    total = np.bincount(tidx * n_groups + gg, minlength=first.size * n_groups).reshape(first.size, n_groups)
    y = np.cumsum(total[::-1], axis=0)[::-1].astype(float)  # at risk per time and group
    d1, d2 = cnt[:, :, 1], cnt[:, :, 2]
    keep = (d1.sum(axis=1) + d2.sum(axis=1)) > 0
    y, d1, d2 = y[keep], d1[keep], d2[keep]
    if not keep.any():  # a stratum without any event adds nothing to the score or its variance
        return np.zeros(n_groups - 1), np.zeros((n_groups - 1, n_groups - 1))
    at_risk = y > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(at_risk, (y - d1 - d2) / y, 1.0)
        skm = np.cumprod(step, axis=0)
        skmm = np.vstack((np.ones((1, n_groups)), skm[:-1]))
        f1 = np.cumsum(np.where(at_risk, skmm * d1 / y, 0.0), axis=0)
        f1m = np.vstack((np.zeros((1, n_groups)), f1[:-1]))
        h = np.where(at_risk, y / skmm, 0.0)  # ĥ_r = Y_r / S_r(t−)
        tr = h.sum(axis=1)
        tq = np.where(at_risk, y * (1 - f1m) / skmm, 0.0).sum(axis=1)
        nd1 = d1.sum(axis=1)
        f = np.cumsum(nd1 / tr)
        fm = np.concatenate(([0.0], f[:-1]))
        fb = (1 - fm) ** rho
        k1 = n_groups - 1
        score = fb[:, None] * np.where(at_risk, d1 - nd1[:, None] * y * (1 - f1m) / (skmm * tq[:, None]), 0.0)
        score = score[:, :k1].sum(axis=0)
        # a(t) = fb (diag(h) − h h'/tr): the derivative of the score in each group's hazard
        a = fb[:, None, None] * (h[:, :, None] * np.eye(n_groups) - h[:, :, None] * h[:, None, :] / tr[:, None, None])
        c_cum = np.cumsum(a * (nd1 / (tr * (1 - fm)))[:, None, None], axis=0)  # C(t), includes t
        c_end = c_cum[-1]
        # cause-1 terms for every group k at risk
        t4_1 = np.where(skm > 0, 1 - (1 - f)[:, None] / skm, 1.0)
        t5_1 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3_1 = np.where(at_risk & (nd1[:, None] > 0), t5_1 * skmm * nd1[:, None] / (tr[:, None] * y), 0.0)
        # cause-2 terms for groups with a competing event and S > 0
        t4_2 = np.where(skm > 0, (1 - f)[:, None] / skm, 0.0)
        t3_2 = np.where((skm > 0) & (d2 > 0), _tie_factor(d2, y) * skmm**2 * d2 / y**2, 0.0)
    # u_k(t) over the first K−1 groups i: a_ik + t4 (C_ik(∞) − C_ik(t)) for cause 1; t4 (C(∞) − C(t)) for cause 2
    a_k = a[:, :k1, :]  # (times, i, k)
    rest = c_end[None, :k1, :] - c_cum[:, :k1, :]
    u1 = a_k + t4_1[:, None, :] * rest
    u2 = t4_2[:, None, :] * rest
    variance = np.einsum("tik,tjk,tk->ij", u1, u1, t3_1) + np.einsum("tik,tjk,tk->ij", u2, u2, t3_2)
    return score, variance


def gray_test(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    by: _input.ColumnSpec = "group",
    cause: Any = 1,
    strata: _input.ColumnSpec | None = None,
    rho: float = 0.0,
    censor: Any = 0,
) -> GrayTest:
    """Gray's k-sample test of cumulative incidence for ``cause`` (R ``cuminc(...)$Tests``)."""
    t, codes, causes, col = _prepare(data, time, event, censor)
    code = resolve_cause(cause, causes, col)
    if not (codes == code).any():  # pragma: no cover - resolve_cause guarantees presence
        raise ModelError(f"no event of cause {cause!r}")
    if not np.isfinite(rho) or rho < 0:
        raise InputError(f"rho must be a non-negative number, not {rho!r}", column="rho")
    g, labels = _input.group_array(data, by, "by")
    _input.n_rows({"time": t, "by": g})
    if len(labels) < 2:
        raise InputError(
            f"the grouping variable has {len(labels)} level(s); a comparison needs at least two",
            column=_input.column_name(by, "by"),
        )
    if strata is None:
        s, n_strata = np.zeros(t.size, dtype=np.intp), 1
    else:
        s, slabels = _input.group_array(data, strata, "strata")
        n_strata = len(slabels)
    k = len(labels)
    score, variance = np.zeros(k - 1), np.zeros((k - 1, k - 1))
    for j in range(n_strata):
        rows = s == j
        sc, v = _gray_stratum(t[rows], codes[rows], g[rows], k, code, rho)
        score += sc
        variance += v
    rank = np.linalg.matrix_rank(variance)
    if rank < k - 1:
        warnings.warn(
            f"Gray's test for cause {cause!r}: the variance matrix is singular (cmprsk reports stat = -1)",
            ConvergenceWarning, stacklevel=2,
        )  # fmt: skip
        statistic = p_value = float("nan")
    else:
        statistic = float(score @ np.linalg.solve(variance, score))
        p_value = float(chi2.sf(statistic, k - 1))
    return GrayTest(
        cause=causes[code - 1], statistic=statistic, dof=k - 1, p_value=p_value, rho=float(rho), groups=labels,
        score=score, variance=variance, rank_deficient=rank < k - 1,
    )  # fmt: skip
