"""The cohort dashboard: overall survival (Kaplan–Meier, log-rank) and cumulative incidence of relapse (Gray's
test) by a chosen grouping, computed from the current records of the user's data access group on every request,
so the curves follow the data as they change."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
import sqlalchemy as sa

import allotrack as at
from allotrack.endpoints import derive_endpoints
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.report.figures import plot_cumulative_incidence, plot_survival
from allotrack.report.html import figure_svg
from allotrack.study.dataset import group_variable
from allotrack.study.plan import GroupVariable
from allotrack.web.auth import User
from allotrack.web.data import scoped_records

AGE = GroupVariable(name="age", variable="age_at_diagnosis", cut=[70], labels=["≤ 70", "> 70"])
COURSES = GroupVariable(name="courses", variable="n_courses", cut=[3], labels=["1–3", "> 3"])
GROUPINGS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series]]] = {  # cuts as a study plan's [[groups]]
    "age": ("Age at diagnosis ≤ 70 / > 70", lambda d: group_variable(d[AGE.variable], AGE)),
    "sex": ("Patient sex", lambda d: d["sex"]),
    "courses": ("Courses 1–3 / > 3", lambda d: group_variable(d[COURSES.variable], COURSES)),
    "donor_sex": ("Donor sex", lambda d: d["donor_sex"]),
    "risk": ("ELN 2022 risk", lambda d: d["eln2022_risk"]),
}  # fmt: skip


def dashboard_figures(engine: sa.Engine, user: User, grouping: str) -> dict[str, str]:
    """Inline SVG of the OS and relapse-incidence curves by ``grouping`` (or a message when there are too few
    patients or groups)."""
    label, make = GROUPINGS[grouping]
    records = scoped_records(engine, user)
    if len(records["patients"]) < 2:
        return {"os": "<p class='muted'>Too few patients.</p>", "cir": ""}
    data = derive_endpoints(records, endpoints=("os", "cir"), validate=False).data
    data["group"] = make(data).astype(object)
    out = {}
    os_data = data.dropna(subset=["group", "os_time", "os_status"])
    os_data = os_data.assign(t=os_data["os_time"].astype(float) / DAYS_PER_MONTH, e=os_data["os_status"].astype(int))
    if os_data["group"].nunique() >= 2:
        fit = at.kaplan_meier(os_data, "t", "e", by="group")
        p = at.logrank_test(os_data, "t", "e", by="group").p_value
        fig = plot_survival(fit, pvalue=p, xlabel="Months since diagnosis", ylabel="Overall survival",
                            figsize=(7.0, 4.8))  # fmt: skip
        out["os"] = figure_svg(fig)
        plt.close(fig)
    else:
        out["os"] = f"<p class='muted'>{label}: only one group has patients.</p>"
    cir = data.dropna(subset=["group", "cir_time", "cir_status"])
    cir = cir.assign(t=cir["cir_time"].astype(float) / DAYS_PER_MONTH, e=cir["cir_status"].astype(int))
    if cir["group"].nunique() >= 2 and (cir["e"] == 1).any():
        fit_c = at.cumulative_incidence(cir, "t", "e", by="group")
        p_c = at.gray_test(cir, "t", "e", by="group", cause=1).p_value
        fig = plot_cumulative_incidence(fit_c, cause=1, pvalue=p_c, xlabel="Months since first remission",
                                        ylabel="Cumulative incidence of relapse", figsize=(7.0, 4.8))  # fmt: skip
        out["cir"] = figure_svg(fig)
        plt.close(fig)
    else:
        out["cir"] = "<p class='muted'>Relapse incidence needs two groups with relapses.</p>"
    return out
