"""Median follow-up by the reverse Kaplan–Meier method (Schemper & Smith, Control Clin Trials 1996;17:343–6).

The Kaplan–Meier estimator is applied with the censoring indicator reversed — the end of follow-up (censoring)
is the "event" and death censors it — so that the curve estimates the distribution of potential follow-up had
no one died. Its median, with the confidence interval of ``quantile.survfit``, is the median follow-up, exactly
as R ``survfit(Surv(time, 1 - status) ~ group)`` prints it (default ``conf.type = "log"``). The estimator is
:func:`allotrack.stats.kaplan_meier.kaplan_meier`, so ties follow survfit (at a time with both a death and a
censoring, the death — now the censored observation — is still at risk) and near-tied times are merged
(``aeqSurv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.stats import _input
from allotrack.stats._confint import check_conf
from allotrack.stats.kaplan_meier import KaplanMeier, kaplan_meier
from allotrack.stats.results import Result

__all__ = ["FollowUp", "median_follow_up"]


@dataclass(frozen=True, repr=False)
class FollowUp(Result):
    """Result of :func:`median_follow_up`. ``table`` has one row per group: group, n, n_censored (follow-up
    ended alive: the reverse-KM events), median, lower, upper. ``fit`` is the reverse Kaplan–Meier fit."""

    table: pd.DataFrame
    conf_type: str
    conf_level: float
    fit: KaplanMeier

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def quantile(self, probs: Sequence[float] | float = (0.25, 0.5, 0.75)) -> pd.DataFrame:
        """Follow-up quantiles (e.g. the interquartile range) with CIs, as R ``quantile(survfit(Surv(time,
        1 - status) ~ 1), probs)``."""
        return self.fit.quantile(probs)


def median_follow_up(
    data: Any = None,
    time: _input.ColumnSpec | None = None,
    event: _input.ColumnSpec | None = None,
    by: _input.ColumnSpec | None = None,
    *,
    conf_type: str = "log",
    conf_level: float = 0.95,
) -> FollowUp:
    """Median follow-up with its CI by the reverse Kaplan–Meier method, overall or per group of ``by``.

    Parameters
    ----------
    data : a data frame (or mapping) holding the columns, or None when the columns are given as arrays.
    time : follow-up time (non-negative); array or column name in ``data``.
    event : 1 = event (death), 0 = censored (alive at last contact) — the ordinary survival coding; it is
        reversed here.
    by : optional grouping; one row per level (sorted, or the categories' order).
    conf_type, conf_level : the pointwise CI of the reverse KM used for the median's CI (R default ``"log"``).
    """
    check_conf(conf_type, conf_level)
    if time is None or event is None:
        raise InputError("give the follow-up time and the event status (columns of data, or arrays)",
                         column="time" if time is None else "event")  # fmt: skip
    t = _input.time_array(data, time, "time")
    e = _input.event_array(data, event, "event")
    _input.n_rows({"time": t, "event": e})
    groups = None if by is None else _input.raw_column(data, by, "by")
    if groups is not None:
        _input.n_rows({"time": t, "by": groups})
    fit = kaplan_meier(time=t, event=1.0 - e, by=groups, conf_type=conf_type, conf_level=conf_level)
    med = fit.median()
    counts = fit.to_frame().groupby("group", observed=True, sort=False)["n_event"].sum()
    sizes = [float(c.n) for c in fit.curves]
    table = pd.DataFrame(
        {
            "group": med["group"].to_numpy(),
            "n": np.asarray(sizes, dtype=int),
            "n_censored": counts.reindex(med["group"]).to_numpy().astype(int),
            "median": med["median"].to_numpy(dtype=float),
            "lower": med["lower"].to_numpy(dtype=float),
            "upper": med["upper"].to_numpy(dtype=float),
        }
    )
    return FollowUp(table=table, conf_type=conf_type, conf_level=conf_level, fit=fit)
