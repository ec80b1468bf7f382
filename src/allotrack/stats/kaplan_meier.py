"""Kaplan–Meier product-limit estimator, reproducing R ``survival::survfit`` (survival ≥ 3.5).

Definitions (R ``survfitKM``/``survfitkm.c``, see ``reference/r-definitions.md`` §1.0–1.1):

* near-tied times are merged first (``aeqSurv``);
* at each distinct time t, ``n_risk = Σ w·I(entry < t ≤ time)`` — subjects censored at t are still at risk —
  and ``n_event = Σ w·δ·I(time = t)``; ``S(t) = Π (1 − n_event/n_risk)``;
* Greenwood variance of −log S: ``Σ d / (n (n − d))`` (infinite when everyone at risk dies);
  ``std_err`` in the table is the SE of S, as ``summary.survfit`` prints it;
* pointwise CIs ``log`` (default), ``log-log`` or ``plain`` as ``survfit_confint``;
* ``.at()`` follows ``summary(fit, times, extend=TRUE)``; ``.median()`` / ``.quantile()`` follow
  ``quantile.survfit``; ``.rmst()`` follows ``print(fit, rmean=τ)``.

Case weights enter the counts and the Greenwood sum (R ``survfit(..., robust=FALSE)``). R switches to the
infinitesimal-jackknife SE by default when weights are non-integer; allotrack always reports Greenwood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.stats import _input
from allotrack.stats._confint import check_conf, survival_confint
from allotrack.stats._ties import merge_near_ties, merge_near_ties_sorted
from allotrack.stats.results import Result

__all__ = ["KaplanMeier", "kaplan_meier"]

_TABLE_COLUMNS = [
    "group", "time", "n_risk", "n_event", "n_censor", "survival", "std_err", "lower", "upper",
]  # fmt: skip


@dataclass(frozen=True)
class _Curve:
    """One group's curve: arrays over its distinct times (rows of the R survfit object)."""

    label: Any
    n: float
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    logse: np.ndarray  # SE of -log S (R's std.err)
    lower: np.ndarray
    upper: np.ndarray
    start_time: float


def _curve(
    label: Any,
    time: np.ndarray,
    event: np.ndarray,
    weight: np.ndarray,
    entry: np.ndarray | None,
    conf_type: str,
    conf_level: float,
    merge_ties: bool = False,
    unweighted: bool = False,
) -> _Curve:
    if entry is None and unweighted:
        ut, d, wtot = _counts_by_sorting(time, event, merge_ties)
    else:
        order = np.argsort(time)
        t = time[order]
        if merge_ties:
            t = merge_near_ties_sorted(t)
        first = np.flatnonzero(np.concatenate(([True], t[1:] != t[:-1])))
        ut = t[first]
        w = weight[order]
        d = np.add.reduceat(w * event[order], first)
        wtot = np.add.reduceat(w, first)
    c = wtot - d
    at_or_after = np.cumsum(wtot[::-1])[::-1]
    if entry is None:
        n_risk = at_or_after
    else:
        es = np.sort(entry)
        ws = weight[np.argsort(entry, kind="stable")]
        tail = np.concatenate((np.cumsum(ws[::-1])[::-1], [0.0]))
        n_risk = at_or_after - tail[np.searchsorted(es, ut, side="left")]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(d > 0, d / n_risk, 0.0)
        surv = np.cumprod(1.0 - hazard)
        green = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        green = np.where((d > 0) & (n_risk <= d), np.inf, green)
    logse = np.sqrt(np.cumsum(green))
    lower, upper = survival_confint(surv, logse, conf_type, conf_level)
    start = float(min(0.0, ut[0])) if entry is None else float(min(0.0, ut[0], float(entry.min())))
    return _Curve(label, float(weight.sum()), ut, n_risk, d, c, surv, logse, lower, upper, start)


def _counts_by_sorting(
    time: np.ndarray, event: np.ndarray, merge_ties: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times, deaths and totals from one integer sort, no argsort (unweighted right-censored data).

    For non-negative doubles the IEEE-754 bit pattern read as int64 is monotone in the value, so the event
    flag can ride in the lowest mantissa bit: sorting the keys sorts by time, and clearing the bit recovers
    the time to within one ulp — far inside the sqrt(eps) tolerance within which R merges times anyway.
    """
    bits = np.abs(time).view(np.int64)  # abs turns -0.0 into 0.0
    keys = np.sort((bits & ~np.int64(1)) | (event > 0).astype(np.int64))
    ts = (keys & ~np.int64(1)).view(np.float64)
    ev = (keys & 1).astype(float)
    if merge_ties:
        ts = merge_near_ties_sorted(ts)
    is_new = np.empty(ts.size, dtype=bool)
    is_new[0] = True
    np.not_equal(ts[1:], ts[:-1], out=is_new[1:])
    first = np.flatnonzero(is_new)
    total = np.diff(np.append(first, ts.size)).astype(float)
    return ts[first], np.add.reduceat(ev, first), total


def _table(curves: Sequence[_Curve]) -> pd.DataFrame:
    """One row per group and distinct time, built once from concatenated arrays (group as a categorical)."""
    sizes = [c.time.size for c in curves]
    codes = np.repeat(np.arange(len(curves)), sizes)
    cat = pd.Categorical.from_codes(codes, categories=pd.Index([c.label for c in curves]))
    data: dict[str, Any] = {"group": cat}
    for column in _TABLE_COLUMNS[1:]:
        if column == "std_err":
            data[column] = np.concatenate([_std_err_of_s(c.surv, c.logse) for c in curves])
        else:
            data[column] = np.concatenate([getattr(c, "surv" if column == "survival" else column) for c in curves])
    return pd.DataFrame(data, copy=False)


def _std_err_of_s(surv: np.ndarray, logse: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return surv * logse


@dataclass(frozen=True, repr=False)
class KaplanMeier(Result):
    """Kaplan–Meier fit, one curve per group. ``table`` holds one row per group and distinct time."""

    table: pd.DataFrame
    conf_type: str
    conf_level: float
    by: str | None
    curves: tuple[_Curve, ...] = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def groups(self) -> list[Any]:
        return [c.label for c in self.curves]

    def at(self, times: Sequence[float] | np.ndarray | float) -> pd.DataFrame:
        """Estimates at chosen times, as R ``summary(fit, times=times, extend=TRUE)``.

        Survival, SE and limits are those of the last distinct time ≤ t (1 and 0 before the first);
        ``n_risk`` is the number at risk at t (at the first distinct time ≥ t, 0 beyond the last);
        ``n_event`` and ``n_censor`` count what happened since the previous requested time.
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        if np.isnan(req).any() or (req < 0).any():
            raise InputError("times for .at() must be non-negative numbers", column="times")
        frames = []
        for c in self.curves:
            last = np.searchsorted(c.time, req, side="right") - 1
            nxt = np.searchsorted(c.time, req, side="left")
            before = last < 0
            li = np.maximum(last, 0)
            surv = np.where(before, 1.0, c.surv[li])
            logse = np.where(before, 0.0, c.logse[li])
            lower = np.where(before, 1.0, c.lower[li])
            upper = np.where(before, 1.0, c.upper[li])
            n_risk = np.where(nxt < c.time.size, c.n_risk[np.minimum(nxt, c.time.size - 1)], 0.0)
            cum_e = np.concatenate(([0.0], np.cumsum(c.n_event)))[last + 1]
            cum_c = np.concatenate(([0.0], np.cumsum(c.n_censor)))[last + 1]
            frames.append(
                pd.DataFrame(
                    {
                        "group": c.label,
                        "time": req,
                        "n_risk": n_risk,
                        "n_event": np.diff(np.concatenate(([0.0], cum_e))),
                        "n_censor": np.diff(np.concatenate(([0.0], cum_c))),
                        "survival": surv,
                        "std_err": _std_err_of_s(surv, logse),
                        "lower": lower,
                        "upper": upper,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def quantile(self, probs: Sequence[float] | float = (0.25, 0.5, 0.75)) -> pd.DataFrame:
        """Survival-time quantiles with CIs, as R ``quantile.survfit``: the time where 1 − S reaches p,
        the midpoint of a flat segment lying at p (within sqrt(eps)), NaN when never reached; the CI is the
        same rule applied to the lower and upper curves."""
        ps = np.atleast_1d(np.asarray(probs, dtype=float))
        if ((ps < 0) | (ps > 1) | np.isnan(ps)).any():
            raise InputError("probabilities must lie in [0, 1]", column="probs")
        rows = []
        for c in self.curves:
            x = np.concatenate(([c.start_time], c.time))
            for p in ps:
                rows.append(
                    {
                        "group": c.label,
                        "prob": p,
                        "quantile": _findq(x, np.concatenate(([0.0], 1 - c.surv)), p),
                        "lower": _findq(x, np.concatenate(([0.0], 1 - c.lower)), p),
                        "upper": _findq(x, np.concatenate(([0.0], 1 - c.upper)), p),
                    }
                )
        return pd.DataFrame(rows)

    def median(self) -> pd.DataFrame:
        """Median survival per group with its CI (columns group, median, lower, upper)."""
        q = self.quantile([0.5]).drop(columns="prob")
        return q.rename(columns={"quantile": "median"})

    def rmst(self, tau: float) -> pd.DataFrame:
        """Restricted mean survival time up to ``tau`` with its SE, as R ``print(fit, rmean=tau)``."""
        if not np.isfinite(tau) or tau <= 0:
            raise InputError(f"tau must be a positive finite time, not {tau!r}", column="tau")
        rows = []
        for c in self.curves:
            keep = c.time <= tau
            if not keep.any():
                rows.append({"group": c.label, "tau": tau, "rmst": tau, "std_err": 0.0})
                continue
            times = np.concatenate((c.time[keep], [tau]))
            surv = np.concatenate((c.surv[keep], [c.surv[keep][-1]]))
            with np.errstate(divide="ignore", invalid="ignore"):
                left = c.n_risk[keep] - c.n_event[keep]
                hh = np.where(left == 0, 0.0, c.n_event[keep] / (c.n_risk[keep] * left))
            hh = np.concatenate((hh, [0.0]))
            delta = np.diff(np.concatenate(([c.start_time], times)))
            rect = delta * np.concatenate(([1.0], surv[:-1]))
            var = np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:])
            rows.append({"group": c.label, "tau": tau, "rmst": rect.sum() + c.start_time, "std_err": np.sqrt(var)})
        return pd.DataFrame(rows)

    def plot(self, **kwargs: Any) -> Any:
        """Journal-style KM figure (see :func:`allotrack.report.figures.plot_survival`)."""
        from allotrack.report.figures import plot_survival

        return plot_survival(self, **kwargs)


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = float(np.sqrt(np.finfo(float).eps))) -> float:
    """R ``survival:::findq``: x times (with the start prepended), y = 1 − curve (non-decreasing)."""
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return float("nan")
    xmax = x[-1]
    dup = pd.Series(y).duplicated().to_numpy()
    xd, yd = x[~dup], y[~dup]
    ok = ~np.isnan(yd)
    xv, yv = xd[ok], yd[ok]

    def first_at_least(v: np.ndarray) -> int:
        hits = np.flatnonzero(v >= p)
        return int(hits[0]) if hits.size else -1

    i1 = first_at_least(yv + tol)
    i2 = first_at_least(yv - tol)
    if p == 0:
        return float(xv[0])
    if not np.isnan(yd[-1]) and abs(p - yd[-1]) < tol and i1 >= 0:
        return float((xv[i1] + xmax) / 2)
    if i1 < 0 or i2 < 0:
        return float("nan")
    return float((xv[i1] + xv[i2]) / 2)


def kaplan_meier(
    data: Any = None,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    by: _input.ColumnSpec | None = None,
    conf_type: str = "log",
    conf_level: float = 0.95,
    entry: _input.ColumnSpec | None = None,
    weights: _input.ColumnSpec | None = None,
) -> KaplanMeier:
    """Kaplan–Meier survival curves (R ``survfit(Surv(time, event) ~ by)``).

    Parameters
    ----------
    data : DataFrame or mapping of columns, optional when arrays are given directly.
    time, event : follow-up time (non-negative) and event indicator (1 event, 0 censored).
    by : grouping column; one curve per level (levels sorted).
    conf_type : ``"log"`` (R default), ``"log-log"`` (SAS default) or ``"plain"``.
    conf_level : confidence level of the pointwise intervals.
    entry : delayed-entry (left-truncation) time; a subject is at risk on (entry, time].
    weights : positive case weights.
    """
    check_conf(conf_type, conf_level)
    t = _input.time_array(data, time, "time")
    e = _input.event_array(data, event)
    n = _input.n_rows({"time": t, "event": e})
    w = _input.weight_array(data, weights, n)
    if entry is not None:
        s = _input.time_array(data, entry, "entry")
        _input.n_rows({"time": t, "entry": s})
        s, t = merge_near_ties(s, t)
        bad = s >= t
        if bad.any():
            raise InputError(
                "entry time must be before the exit time (a subject is at risk on (entry, time])",
                column=_input.column_name(entry, "entry"),
                rows=np.flatnonzero(bad)[:5].tolist(),
                values=s[np.flatnonzero(bad)[:5]].tolist(),
                n_bad=int(bad.sum()),
            )
    else:
        s = None
    if n == 0:
        raise InputError("no rows: a Kaplan–Meier curve needs at least one observation")
    if by is None:
        codes = np.zeros(n, dtype=np.intp)
        labels: list[Any] = ["all"]
    else:
        codes, labels = _input.group_array(data, by, "by")
        _input.n_rows({"time": t, "by": codes})
    presorted_ties = s is None and len(labels) == 1
    if not presorted_ties:
        t = merge_near_ties(t)[0] if s is None else t
    curves = []
    for k, label in enumerate(labels):
        rows = codes == k if len(labels) > 1 else slice(None)
        curves.append(
            _curve(
                label,
                t[rows],
                e[rows],
                w[rows],
                None if s is None else s[rows],
                conf_type,
                conf_level,
                merge_ties=presorted_ties,
                unweighted=weights is None,
            )
        )
    table = _table(curves)
    name = None if by is None else _input.column_name(by, "by")
    return KaplanMeier(table=table, conf_type=conf_type, conf_level=conf_level, by=name, curves=tuple(curves))
