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


def response_section(ctx: Context, a: sp.ResponseAnalysis) -> Section:
    """Response rates with exact (Clopper–Pearson) intervals, overall and per group: complete remission (a
    remission from the first course on), or, with ``responders``, a best response among those categories (e.g.
    IMWG ≥ PR: ["sCR", "CR", "VGPR", "PR"]); and early death."""
    d = ctx.data
    groups: list[tuple[str, pd.DataFrame]] = [("All analysed", d)]
    if a.by:
        groups += [(f"{ctx.label(a.by)}: {g}", d[d[a.by].astype(str) == g]) for g in ctx.ordered(d, a.by)]
    if a.responders:
        outcome = d["best_response"].isin(a.responders).astype(int)
        what = f"Response ({', '.join(a.responders)})"
    else:
        outcome, what = d["cr"], "Complete remission"
    rows = []
    for name, sub in groups:
        row: dict[str, Any] = {"Group": name, "N": len(sub)}
        for values, label in ((outcome.loc[sub.index], what), (sub["early_death"], "Early death")):
            k, n = int(values.fillna(0).sum()), int(values.notna().sum())
            ci = sps.binomtest(k, n).proportion_ci(method="exact")
            row[f"{label}, n (%; 95% CI)"] = f"{k} ({format_percent(k / n)}%; {format_percent(ci.low)}–" \
                                             f"{format_percent(ci.high)}%)"
        rows.append(row)
    days = ctx.plan.endpoints.early_death_days
    notes = ("Exact (Clopper–Pearson) 95% confidence intervals (R binom.test)",
             f"Best response from the first course on; early death: death within {days} days of the first course")
    return Section("Response and early death", (), (TableBlock(f"{what} and early death", pd.DataFrame(rows),
                                                                notes),))  # fmt: skip


GRADE_BANDS = (("Grade 1–2", 1, 2), ("Grade 3", 3, 3), ("Grade 4", 4, 4), ("Grade 5", 5, 5))


def adverse_events_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    """Patients by their worst CTCAE grade per term (each patient counted once per term, in the band of their
    worst grade; percentages of all patients analysed), terms by decreasing frequency; with ``by``, the patients
    with a grade ≥ 3 event per group compared as gtsummary does."""
    ae = ctx.records["adverse_events"]
    ae = ae[ae["patient_id"].isin(set(ctx.data["patient_id"]))]
    n = len(ctx.data)
    if ae.empty:
        return Section("Adverse events", (f"No adverse events are recorded for the {n} patients analysed.",), ())
    worst = ae.groupby(["patient_id", "term"])["grade"].max().unstack()
    rows = []
    for term in worst.count().sort_values(ascending=False, kind="stable").index:
        grades = worst[term].dropna()
        row: dict[str, Any] = {"Adverse event": str(term), "Any grade": _n_pct(len(grades), n)}
        row |= {band: _n_pct(int(((grades >= lo) & (grades <= hi)).sum()), n) for band, lo, hi in GRADE_BANDS}
        rows.append(row)
    tables = [TableBlock(f"Adverse events by worst grade (N = {n} patients)", pd.DataFrame(rows),
                         ("n (%) of the patients analysed; each patient counted once per term, at the worst "
                          "grade (CTCAE)",))]  # fmt: skip
    if a.by:
        d = ctx.data.set_index("patient_id")
        table_data = pd.DataFrame(index=d.index)
        for term in worst.columns:
            table_data[f"{term} (grade ≥ 3)"] = (worst[term].reindex(d.index) >= 3).astype(int)
        table_data[a.by] = d[a.by]
        t = table_one(table_data.reset_index(drop=True), by=a.by, variables=[str(c) for c in table_data if c != a.by],
                      levels=ctx.levels)  # fmt: skip
        tables.append(TableBlock(f"Patients with a grade ≥ 3 adverse event by {ctx.label(a.by)}", t))
    return Section("Adverse events", (), tuple(tables))


def _n_pct(k: int, n: int) -> str:
    return f"{k} ({format_percent(k / n)}%)" if n else "0"


def chimerism_section(ctx: Context, a: sp.ChimerismAnalysis) -> Section:
    """Donor chimerism per patient over time: since diagnosis (``time_from = "diagnosis"``, the plan's unit) or in
    days since the latest cell infusion before each test (``"infusion"``: how long donor cells persist). The table
    counts tests and patients, the median of the detected values, the patients ever above 1 %, and each patient's
    last day with donor cells detected after an infusion (median and range)."""
    ch = views.chimerism(ctx.records)
    if ch.empty:
        return Section("Donor chimerism", ("No chimerism results are recorded for these patients.",), ())
    inf = ctx.records["infusions"][["patient_id", "date"]].dropna().rename(columns={"date": "infused"})
    ch = pd.merge_asof(ch.sort_values("date"), inf.sort_values("infused"), left_on="date", right_on="infused",
                       by="patient_id", direction="backward")  # fmt: skip
    ch["day"] = (ch["date"] - ch["infused"]).dt.days
    detected = ch[~ch["below_lod"].fillna(False).astype(bool) & ch["donor_percent"].notna()]
    last_day = detected.dropna(subset=["day"]).groupby("patient_id")["day"].max()
    if a.time_from == "infusion":
        ch = ch.dropna(subset=["day"]).assign(time=lambda f: f["day"].astype(float))
        fig = plot_chimerism(ch, xlabel="Days since the latest infusion")
    else:
        fig = plot_chimerism(ch, ctx.records["patients"][["patient_id", "diagnosis_date"]], unit=ctx.unit,
                             scale=ctx.scale)  # fmt: skip
    summary = detected.groupby("patient_id")["donor_percent"].max()
    row = {"Tests": len(ch), "Patients": int(ch["patient_id"].nunique()),
           "Median detected donor chimerism, %": f"{detected['donor_percent'].median():.2f}" if len(detected) else "—",
           "Patients ever > 1 %": int((summary > 1).sum()),
           "Last day detected after an infusion, median (range)": (
               f"{last_day.median():g} ({last_day.min():g}–{last_day.max():g})" if len(last_day) else "—")}  # fmt: skip
    notes = ("Below the limit of detection: counted as a test, not in the median; drawn on the dashed line",)
    return Section("Donor chimerism", (), (TableBlock("Chimerism tests", pd.DataFrame([row]), notes),),
                   (FigureBlock("Donor chimerism per patient (log scale; dashed line: limit of detection)", fig),))


def swimmer_section(ctx: Context, a: sp.SimpleAnalysis) -> Section:
    fig = plot_swimmer(ctx.records, unit=ctx.unit, scale=ctx.scale)
    return Section("Patient timelines", (), (), (FigureBlock("Courses, infusions, remission, relapse and death per "
                                                             "patient", fig),))  # fmt: skip
