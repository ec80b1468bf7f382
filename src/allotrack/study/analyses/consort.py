"""The ``consort`` plan analysis: the flow of a randomised trial's patients (CONSORT 2010) counted from the
study-design records — enrolment (``enrolments``; eligibility recorded as no: excluded), randomisation and
allocation (an arm recorded), follow-up per arm (died, lost to follow-up before the horizon, followed to it) and
analysis per population (``populations`` rows included, and the excluded with their reasons)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from allotrack.report.consort_figure import plot_consort
from allotrack.report.document import FigureBlock, Section, TableBlock
from allotrack.study import plan as sp
from allotrack.study.context import Context


def consort_section(ctx: Context, a: sp.ConsortAnalysis) -> Section:
    recs = ctx.records
    enrol = recs["enrolments"]
    if a.study is not None:
        enrol = enrol[enrol["study"] == a.study]
    enrol = enrol.drop_duplicates("patient_id")
    eligible = enrol["eligible"].fillna(False).astype(bool)
    allocated = enrol["arm"].notna()
    not_eligible = ~eligible & ~allocated  # found ineligible after randomisation: randomised, analysed as allocated
    randomised = enrol[allocated]
    arms = ctx.ordered(randomised.assign(arm=randomised["arm"].astype(str)), "arm")
    deaths = recs["deaths"].drop_duplicates("patient_id").set_index("patient_id")["date"]
    last = recs["follow_up"].groupby("patient_id")["last_contact_date"].max()
    pops = recs["populations"]
    if a.study is not None:
        pops = pops[pops["study"] == a.study]
    rows: list[dict[str, Any]] = [
        {"Stage": "Enrolled (assessed for eligibility)", "Arm": "", "n": len(enrol)},
        {"Stage": "Excluded: not eligible", "Arm": "", "n": int(not_eligible.sum())},
        {"Stage": "Eligible, not randomised", "Arm": "", "n": int((eligible & ~allocated).sum())},
        {"Stage": "Randomised", "Arm": "", "n": len(randomised)},
    ]
    columns = []
    for arm in arms:
        mine = randomised[randomised["arm"].astype(str) == arm]
        ids = mine["patient_id"]
        start = pd.to_datetime(mine.set_index("patient_id")["randomisation_date"].fillna(
            mine.set_index("patient_id")["enrolment_date"]))  # fmt: skip
        end = start + pd.to_timedelta(a.horizon_days, unit="D")
        died = ids.map(deaths).notna().to_numpy() & (ids.map(deaths) <= ids.map(end)).to_numpy()
        seen = pd.to_datetime(ids.map(last))
        lost = ~died & ((seen < ids.map(end)) | seen.isna()).to_numpy()
        box = [f"Allocated to {arm}\n(n = {len(mine)})",
               f"Died by day {a.horizon_days:g}: {int(died.sum())}\nLost to follow-up: {int(lost.sum())}\n"
               f"Followed to day {a.horizon_days:g}: {int((~died & ~lost).sum())}"]  # fmt: skip
        rows += [{"Stage": "Allocated", "Arm": arm, "n": len(mine)},
                 {"Stage": f"Died by day {a.horizon_days:g}", "Arm": arm, "n": int(died.sum())},
                 {"Stage": f"Lost to follow-up before day {a.horizon_days:g}", "Arm": arm, "n": int(lost.sum())}]
        for population in a.populations:
            members = pops[(pops["population"] == population) & pops["patient_id"].isin(set(ids))]
            included = members["included"].fillna(False).astype(bool)
            reasons = members.loc[~included, "reason"].fillna("no reason recorded").value_counts()
            rows.append({"Stage": f"Analysed: {population}", "Arm": arm, "n": int(included.sum())})
            rows += [{"Stage": f"Excluded from {population}: {why}", "Arm": arm, "n": int(n)} for why, n in
                     reasons.items()]  # fmt: skip
            listed = "".join(f"\n  {why}: {n}" for why, n in reasons.items())
            box.append(f"Analysed, {population}: {int(included.sum())}"
                       + (f"\nExcluded: {int((~included).sum())}{listed}" if len(reasons) else ""))
        columns.append(box)
    fig = plot_consort(f"Enrolled (assessed for eligibility)\n(n = {len(enrol)})",
                       f"Excluded (n = {int((~allocated).sum())})\nNot eligible: {int(not_eligible.sum())}\n"
                       f"Eligible, not randomised: {int((eligible & ~allocated).sum())}",
                       f"Randomised (n = {len(randomised)})", columns)  # fmt: skip
    notes = (f"Counted from the enrolment, death, follow-up and population records; lost to follow-up: alive and last "
             f"seen before day {a.horizon_days:g} after randomisation",)
    tables = [TableBlock("Patient flow", pd.DataFrame(rows), notes)]
    if randomised["stratum"].notna().any():
        tables.append(_allocation_balance(randomised, arms))
    return Section("Patient flow (CONSORT)", (), tuple(tables), (FigureBlock("CONSORT flow diagram", fig),))


def _allocation_balance(randomised: pd.DataFrame, arms: list[str]) -> TableBlock:
    """Randomised patients by stratum and arm (the allocation's balance, as the allocation log's summary gives
    it), with the largest difference between arms in any stratum."""
    counts = pd.crosstab(randomised["stratum"].fillna("not recorded").astype(str), randomised["arm"].astype(str))
    counts = counts.reindex(columns=arms, fill_value=0)
    shown = counts.assign(Total=counts.sum(axis=1), Difference=counts.max(axis=1) - counts.min(axis=1))
    shown = shown.reset_index().rename(columns={"stratum": "Stratum"})
    total = {"Stratum": "All strata", **{arm: int(counts[arm].sum()) for arm in arms},
             "Total": int(counts.to_numpy().sum()), "Difference": int(counts.sum().max() - counts.sum().min())}
    shown = pd.concat([shown, pd.DataFrame([total])], ignore_index=True)
    note = ("Randomised patients by the stratum recorded at randomisation and the arm allocated; difference: the "
            "largest minus the smallest arm (with equal allocation, permuted blocks keep it below the largest block "
            "size within each stratum).",)  # fmt: skip
    return TableBlock("Allocation by stratum", shown, note, data=counts.reset_index())
