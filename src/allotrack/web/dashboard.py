"""The cohort dashboard: overall survival (Kaplan–Meier, log-rank) and cumulative incidence of relapse (Gray's
test) by a chosen grouping, computed from the current records of the user's data access group on every request,
so the curves follow the data as they change. Only data (:class:`CurveSet`): :mod:`allotrack.web.charts` draws
them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

import allotrack as at
from allotrack.endpoints import derive_endpoints
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.report.format import format_pvalue
from allotrack.study.dataset import group_variable
from allotrack.study.plan import GroupVariable
from allotrack.web.auth import User
from allotrack.web.data import scoped_records


@dataclass(frozen=True)
class Curve:
    """One group's step curve from time 0: the estimate after each time, its confidence limits (None where not
    estimable), the number at risk just before each time, and the censoring times with the estimate there."""

    group: str
    time: list[float]
    estimate: list[float]
    lower: list[float | None]
    upper: list[float | None]
    n_risk: list[float | None]
    censored_time: list[float]
    censored_estimate: list[float]


@dataclass(frozen=True)
class CurveSet:
    """The curves of one figure with the numbers at risk at ``breaks`` (one row per group) and the test."""

    kind: str  # "survival" (Kaplan–Meier) or "incidence" (cumulative incidence)
    curves: list[Curve]
    breaks: list[float]
    at_risk: dict[str, list[float]]
    test: str
    p_value: float
    xlabel: str
    ylabel: str

    @property
    def p_text(self) -> str:
        return f"{self.test} {format_pvalue(self.p_value, prepend_p=True)}"


AGE = GroupVariable(name="age", variable="age_at_diagnosis", cut=[70], labels=["≤ 70", "> 70"])
COURSES = GroupVariable(name="courses", variable="n_courses", cut=[3], labels=["1–3", "> 3"])
GROUPINGS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {  # cuts as a study plan's [[groups]]
    "age": ("Age at diagnosis ≤ 70 / > 70", lambda d: group_variable(d[AGE.variable], AGE)),
    "sex": ("Patient sex", lambda d: d["sex"]),
    "courses": ("Courses 1–3 / > 3", lambda d: group_variable(d[COURSES.variable], COURSES)),
    "donor_sex": ("Donor sex", lambda d: d["donor_sex"]),
    "risk": ("ELN 2022 risk", lambda d: d["eln2022_risk"]),
}  # fmt: skip


def _breaks(tmax: float, n: int = 6) -> list[float]:
    """Round tick positions from 0 past ``tmax`` (steps of 1, 2, 2.5 or 5 times a power of ten), shared by the axis
    and the numbers at risk."""
    raw = max(tmax, 1e-9) / (n - 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [float(x) for x in np.arange(0, tmax + step * 0.5, step)]


def _none(values: pd.Series) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values.to_numpy(dtype=float)]


def _at_risk(data: pd.DataFrame, breaks: list[float], groups: list[str]) -> dict[str, list[float]]:
    """Numbers at risk (still followed and free of any event) at each break, per group (R summary.survfit)."""
    table = at.kaplan_meier(data.assign(any=(data["e"] > 0).astype(int)), "t", "any", by="group").at(breaks)
    return {g: table.loc[table["group"].astype(str) == g, "n_risk"].astype(float).tolist() for g in groups}


def _survival(data: pd.DataFrame, p: float, xlabel: str) -> CurveSet:
    table = at.kaplan_meier(data, "t", "e", by="group").table
    curves = []
    for group, rows in table.groupby(table["group"].astype(str), sort=False):
        n0 = float(rows["n_risk"].iloc[0])
        cens = rows[rows["n_censor"] > 0]
        curves.append(Curve(str(group), [0.0, *rows["time"].astype(float)], [1.0, *rows["survival"].astype(float)],
                            [1.0, *_none(rows["lower"])], [1.0, *_none(rows["upper"])],
                            [n0, *rows["n_risk"].astype(float)], cens["time"].astype(float).tolist(),
                            cens["survival"].astype(float).tolist()))  # fmt: skip
    breaks = _breaks(float(data["t"].max()))
    groups = [c.group for c in curves]
    return CurveSet("survival", curves, breaks, _at_risk(data, breaks, groups), "Log-rank", p, xlabel,
                    "Overall survival")  # fmt: skip


def _incidence(data: pd.DataFrame, p: float, xlabel: str) -> CurveSet:
    fit = at.cumulative_incidence(data, "t", "e", by="group")
    table = fit.table[fit.table["cause"] == 1]
    last = {str(c.group): float(c.last_time) for c in fit.curves if c.cause == 1}
    curves = []
    for group, rows in table.groupby(table["group"].astype(str), sort=False):
        n0 = float((data["group"].astype(str) == group).sum())
        end = last.get(str(group), float(rows["time"].max()))  # the curve goes on flat to the last follow-up
        est = [0.0, *rows["estimate"].astype(float)]
        curves.append(Curve(str(group), [0.0, *rows["time"].astype(float), end], [*est, est[-1]],
                            [0.0, *_none(rows["lower"]), _none(rows["lower"])[-1]],
                            [0.0, *_none(rows["upper"]), _none(rows["upper"])[-1]],
                            [n0, *rows["n_risk"].astype(float), None], [], []))  # fmt: skip
    for group in (str(g) for g in fit.groups if str(g) not in {c.group for c in curves}):  # no relapse: flat at 0
        end = last.get(group, float(data.loc[data["group"].astype(str) == group, "t"].max()))
        n0 = float((data["group"].astype(str) == group).sum())
        curves.append(Curve(group, [0.0, end], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [n0, None], [], []))
    breaks = _breaks(float(data["t"].max()))
    groups = [str(g) for g in fit.groups]
    curves.sort(key=lambda c: groups.index(c.group) if c.group in groups else len(groups))
    return CurveSet("incidence", curves, breaks, _at_risk(data, breaks, [c.group for c in curves]), "Gray's test", p,
                    xlabel, "Cumulative incidence of relapse")  # fmt: skip


def dashboard_figures(engine: sa.Engine, user: User, grouping: str) -> dict[str, CurveSet | str]:
    """The OS and relapse-incidence curves by ``grouping`` (or a message when there are too few patients or
    groups)."""
    label, make = GROUPINGS[grouping]
    records = scoped_records(engine, user)
    if len(records["patients"]) < 2:
        return {"os": "Too few patients.", "cir": ""}
    data = derive_endpoints(records, endpoints=("os", "cir"), validate=False).data
    data["group"] = make(data).astype(object)
    out: dict[str, CurveSet | str] = {}
    os_data = data.dropna(subset=["group", "os_time", "os_status"])
    os_data = os_data.assign(t=os_data["os_time"].astype(float) / DAYS_PER_MONTH, e=os_data["os_status"].astype(int))
    if os_data["group"].nunique() >= 2:
        p = at.logrank_test(os_data, "t", "e", by="group").p_value
        out["os"] = _survival(os_data, p, "Months since diagnosis")
    else:
        out["os"] = f"{label}: only one group has patients."
    cir = data.dropna(subset=["group", "cir_time", "cir_status"])
    cir = cir.assign(t=cir["cir_time"].astype(float) / DAYS_PER_MONTH, e=cir["cir_status"].astype(int))
    if cir["group"].nunique() >= 2 and (cir["e"] == 1).any():
        p_c = at.gray_test(cir, "t", "e", by="group", cause=1).p_value
        out["cir"] = _incidence(cir, p_c, "Months since first remission")
    else:
        out["cir"] = "Relapse incidence needs two groups with relapses."
    return out
