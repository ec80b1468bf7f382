"""The descriptive clinical analyses of a study plan: response and early death, worst adverse-event grades,
donor chimerism over time and patient timelines. Each function returns a report :class:`Section`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy import stats as sps

from allotrack.records import views
from allotrack.report.clinical_figures import plot_chimerism, plot_swimmer
from allotrack.report.document import FigureBlock, Section, TableBlock
from allotrack.report.format import format_percent
from allotrack.report.table_one import table_one
from allotrack.study import plan as sp
from allotrack.study.context import Context


def response_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    d = ctx.data
    groups: list[tuple[str, pd.DataFrame]] = [("All patients", d)]
    if a.by:
        groups += [(f"{ctx.label(a.by)}: {g}", d[d[a.by].astype(str) == g]) for g in ctx.ordered(d, a.by)]
    rows = []
    for name, sub in groups:
        row: dict[str, Any] = {"Group": name, "N": len(sub)}
        for col, label in (("cr", "Complete remission"), ("early_death", "Early death")):
            k, n = int(sub[col].fillna(0).sum()), int(sub[col].notna().sum())
            ci = sps.binomtest(k, n).proportion_ci(method="exact")
            row[f"{label}, n (%; 95% CI)"] = f"{k} ({format_percent(k / n)}%; {format_percent(ci.low)}–" \
                                             f"{format_percent(ci.high)}%)"
        rows.append(row)
    note = ("Exact (Clopper–Pearson) 95% confidence intervals (R binom.test)",)
    return Section("Response and early death", (), (TableBlock("Complete remission and early death", pd.DataFrame(rows),
                                                                note),))  # fmt: skip


def adverse_events_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    ae = ctx.records["adverse_events"]
    worst = ae.groupby(["patient_id", "term"])["grade"].max().unstack()
    d = ctx.data.set_index("patient_id")
    table_data = pd.DataFrame(index=d.index)
    for term in worst.columns:
        grade = worst[term].reindex(d.index)
        table_data[f"{term} (grade ≥ 3)"] = (grade >= 3).astype(int)
    if a.by:
        table_data[a.by] = d[a.by]
    t = table_one(table_data.reset_index(drop=True), by=a.by, variables=[str(c) for c in table_data if c != a.by],
                  levels=ctx.levels)  # fmt: skip
    return Section("Adverse events", ("Worst CTCAE grade per patient and term.",),
                   (TableBlock("Patients with a grade ≥ 3 adverse event", t),))


def chimerism_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    ch = views.chimerism(ctx.records)
    fig = plot_chimerism(ch, ctx.records["patients"][["patient_id", "diagnosis_date"]], unit=ctx.unit, scale=ctx.scale)
    summary = ch.groupby("patient_id")["donor_percent"].agg(["count", "median", "max"])
    rows = [{"Tests": int(summary["count"].sum()), "Patients": len(summary),
             "Median donor chimerism, %": f"{ch['donor_percent'].median():.2f}",
             "Patients ever > 1 %": int((summary["max"] > 1).sum())}]  # fmt: skip
    return Section("Donor chimerism", ("Donor chimerism before each course (microchimerism is expected after MST).",),
                   (TableBlock("Chimerism tests", pd.DataFrame(rows)),),
                   (FigureBlock("Donor chimerism per patient (log scale; dashed line: limit of detection)", fig),))


def swimmer_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    fig = plot_swimmer(ctx.records, unit=ctx.unit, scale=ctx.scale)
    return Section("Patient timelines", (), (), (FigureBlock("Courses, infusions, remission, relapse and death per "
                                                             "patient", fig),))  # fmt: skip
