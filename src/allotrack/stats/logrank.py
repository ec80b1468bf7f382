"""k-sample G-rho tests (log-rank, Peto–Peto), stratified, and the test for trend — R ``survival::survdiff``.

Definitions (``survdiff.fit``/``survdiff2.c``; ``reference/r-definitions.md`` §1.2): within each stratum, at
each distinct death time with d deaths among n at risk (``n_k`` in group k) and weight ``w = S(t−)^rho``
(pooled, unweighted, left-continuous Kaplan–Meier of the stratum):
``O_k += w d_k``, ``E_k += w d n_k / n``, ``V_jk += w² d (n − d)/(n − 1) · (n_j/n)(δ_jk − n_k/n)`` (n > 1).
O, E and V are summed over strata; groups with E = 0 are dropped and ``χ² = (O−E)' V⁻¹ (O−E)`` over all but the
first remaining group, on (#groups with E > 0) − 1 degrees of freedom. Near-tied times are merged first
(``aeqSurv``). The trend test for ordered groups with scores c is ``(c'(O−E))² / (c'Vc)`` on 1 df.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

from allotrack.errors import InputError, ModelError
from allotrack.stats import _input
from allotrack.stats._ties import merge_near_ties
from allotrack.stats.results import Result, TestResult

__all__ = ["LogRankTest", "logrank_test"]


@dataclass(frozen=True, repr=False)
class LogRankTest(Result):
    """Result of :func:`logrank_test`. ``table`` has group, n, observed, expected (weighted for rho > 0)."""

    statistic: float
    dof: int
    p_value: float
    rho: float
    table: pd.DataFrame
    variance: np.ndarray
    trend: TestResult | None

    def to_frame(self) -> pd.DataFrame:
        out = self.table.copy()
        out.attrs.update({"statistic": self.statistic, "dof": self.dof, "p_value": self.p_value})
        return out

    def __repr__(self) -> str:
        name = "Log-rank" if self.rho == 0 else f"G-rho (rho={self.rho:g})"
        lines = [f"<{name} test: chi-square {self.statistic:.4f} on {self.dof} df, p = {self.p_value:.4g}>"]
        if self.trend is not None:
            lines.append(f"  trend: chi-square {self.trend.statistic:.4f} on 1 df, p = {self.trend.p_value:.4g}")
        lines.append(str(self.table))
        return "\n".join(lines)


def _stratum_sums(
    t: np.ndarray, e: np.ndarray, g: np.ndarray, k: int, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(t, kind="stable")
    t, e, g = t[order], e[order], g[order]
    first = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
    tidx = np.repeat(np.arange(first.size), np.diff(np.concatenate((first, [t.size]))))
    n_times = first.size
    count = np.bincount(tidx * k + g, minlength=n_times * k).reshape(n_times, k).astype(float)
    deaths = np.bincount(tidx * k + g, weights=e, minlength=n_times * k).reshape(n_times, k)
    n_k = np.cumsum(count[::-1], axis=0)[::-1]
    n = n_k.sum(axis=1)
    d = deaths.sum(axis=1)
    if rho != 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            km = np.cumprod(np.where(d > 0, 1 - d / n, 1.0))
        weight = np.concatenate(([1.0], km[:-1])) ** rho
    else:
        weight = np.ones(n_times)
    has = d > 0
    n_k, n, d, deaths, weight = n_k[has], n[has], d[has], deaths[has], weight[has]
    observed = (weight[:, None] * deaths).sum(axis=0)
    frac = n_k / n[:, None]
    expected = (weight[:, None] * d[:, None] * frac).sum(axis=0)
    multi = n > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(multi, weight**2 * d * (n - d) / np.where(multi, n - 1, 1.0), 0.0)
    variance = np.diag((factor[:, None] * frac).sum(axis=0)) - (frac * factor[:, None]).T @ frac
    return observed, expected, variance


def logrank_test(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    by: _input.ColumnSpec = "group",
    strata: _input.ColumnSpec | None = None,
    rho: float = 0.0,
    trend: bool | Sequence[float] = False,
) -> LogRankTest:
    """Compare survival between groups (R ``survdiff(Surv(time, event) ~ by + strata(strata), rho=rho)``).

    ``rho=0`` is the log-rank test, ``rho=1`` Peto & Peto's Gehan–Wilcoxon. ``trend=True`` adds the test for
    trend with scores equal to the group levels when numeric (else 0, 1, 2, …); a sequence gives the scores.
    """
    t = _input.time_array(data, time, "time")
    e = _input.event_array(data, event)
    g, labels = _input.group_array(data, by, "by")
    n = _input.n_rows({"time": t, "event": e, "by": g})
    if not np.isfinite(rho) or rho < 0:
        raise InputError(f"rho must be a non-negative number, not {rho!r}", column="rho")
    if len(labels) < 2:
        raise InputError(
            f"the grouping variable has {len(labels)} level(s); a comparison needs at least two",
            column=_input.column_name(by, "by"),
        )
    if strata is None:
        s = np.zeros(n, dtype=np.intp)
        n_strata = 1
    else:
        s, slabels = _input.group_array(data, strata, "strata")
        _input.n_rows({"time": t, "strata": s})
        n_strata = len(slabels)
    if not e.any():
        raise ModelError("no events: every observation is censored, so groups cannot be compared")
    t = merge_near_ties(t)[0]
    k = len(labels)
    observed, expected, variance = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for j in range(n_strata):
        rows = s == j if n_strata > 1 else slice(None)
        o, x, v = _stratum_sums(t[rows], e[rows], g[rows], k, rho)
        observed += o
        expected += x
        variance += v
    keep = np.flatnonzero(expected > 0)
    dof = keep.size - 1
    diff = observed - expected
    sub = keep[1:]
    try:
        statistic = float(diff[sub] @ np.linalg.solve(variance[np.ix_(sub, sub)], diff[sub]))
    except np.linalg.LinAlgError as err:
        raise ModelError("the variance matrix of the log-rank statistic is singular") from err
    table = pd.DataFrame(
        {
            "group": labels,
            "n": np.bincount(g, minlength=k),
            "observed": observed,
            "expected": expected,
        }
    )
    trend_result = None
    if trend is not False:
        scores = _trend_scores(trend, labels)
        u = float(scores @ diff)
        vt = float(scores @ variance @ scores)
        if vt <= 0:
            raise ModelError("the trend statistic has zero variance (constant scores?)")
        stat_t = u * u / vt
        trend_result = TestResult("trend", stat_t, 1, float(chi2.sf(stat_t, 1)))
    return LogRankTest(
        statistic=statistic,
        dof=int(dof),
        p_value=float(chi2.sf(statistic, dof)),
        rho=float(rho),
        table=table,
        variance=variance,
        trend=trend_result,
    )


def _trend_scores(trend: bool | Sequence[float], labels: list[Any]) -> np.ndarray:
    if trend is True:
        try:
            return np.asarray([float(x) for x in labels])
        except (TypeError, ValueError):
            return np.arange(len(labels), dtype=float)
    scores = np.asarray(trend, dtype=float)
    if scores.shape != (len(labels),) or not np.isfinite(scores).all():
        raise InputError(f"trend scores must be {len(labels)} finite numbers, one per group {labels}")
    return scores
