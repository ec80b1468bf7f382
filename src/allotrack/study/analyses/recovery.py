"""The ``recovery`` plan analysis: hematopoietic recovery per course, by one of two rules.

- ``rule = "mst"`` (microtransplantation; the older-AML study's definition): from the onset of cytopenia (first of
  3 consecutive days with ANC < 2 and platelets < 100 × 10⁹/L after chemotherapy) to recovery (first of 3
  consecutive days with ANC > 0.5 and platelets > 30 × 10⁹/L, counted from the nadir),
  :func:`allotrack.clinical.recovery.hematopoietic_recovery`.
- ``rule = "cibmtr"``: neutrophil (ANC ≥ 0.5) and platelet (≥ 20 untransfused) engraftment, days after the
  course's infusion (CIBMTR).

``courses = "induction"`` keeps each patient's first course (one observation per patient); ``"all"`` keeps every
course, and because a patient's courses are correlated the summary is per patient — each patient's median over
their courses, then the median (Q1, Q3) of those — never a pool of courses as if independent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from allotrack.endpoints.recovery import recovery_per_course
from allotrack.report.document import Section, TableBlock
from allotrack.study.plan import RecoveryAnalysis

if TYPE_CHECKING:
    from allotrack.study.context import Context


def recovery_section(ctx: Context, a: RecoveryAnalysis) -> Section:
    """Median (Q1, Q3) days to recovery by the plan's rule, courses and clustering (see the module)."""
    courses = ctx.records["courses"]
    first = courses.sort_values(["patient_id", "number"]).drop_duplicates("patient_id")["course_id"]
    keep = set(first) if a.courses == "induction" else set(courses["course_id"])
    rows, data = [], []
    for label, rule, days in _durations(ctx, a.rule, keep):
        recovered = days.dropna(subset=["days"])
        values = _summary(recovered, a.courses)
        n_patients, n_courses = days["patient_id"].nunique(), len(days)
        q1, med, q3 = np.quantile(values, [0.25, 0.5, 0.75], method="inverted_cdf") if len(values) else (np.nan,) * 3
        rows.append({"Recovery": label, "Patients": n_patients, "Courses": n_courses, "Recovered": len(recovered),
                     "Median days (Q1, Q3)": f"{med:.0f} ({q1:.0f}, {q3:.0f})" if len(values) else "—",
                     "Range": f"{values.min():.0f}–{values.max():.0f}" if len(values) else "—"})  # fmt: skip
        data.append({"recovery": label, "rule": rule, "patients": n_patients, "courses": n_courses,
                     "recovered_courses": len(recovered), "median": med, "q1": q1, "q3": q3})  # fmt: skip
    which = "each patient's first (induction) course" if a.courses == "induction" else (
        "all courses; summarised per patient (the median of each patient's courses, then their median), as a "
        "patient's courses are correlated")  # fmt: skip
    notes = (RULES[a.rule], f"Courses: {which}.")
    return Section("Hematopoietic recovery", (), (TableBlock("Recovery", pd.DataFrame(rows), notes,
                                                             data=pd.DataFrame(data)),))  # fmt: skip


RULES = {
    "mst": "Days from the onset of cytopenia (first of 3 consecutive days with ANC < 2 and platelets < 100 × 10⁹/L "
           "after chemotherapy) to recovery (first of 3 consecutive days with ANC > 0.5 and platelets > 30 × 10⁹/L "
           "after the nadir)",
    "cibmtr": "Days after the course's infusion to the first of 3 consecutive days at or above the threshold after "
              "the nadir (CIBMTR); platelets without transfusion in the preceding 7 days",
}  # fmt: skip


def _durations(ctx: Context, rule: str, keep: set[str]) -> list[tuple[str, str, pd.DataFrame]]:
    """(label, rule, the kept courses with counts: ``patient_id``, ``course_id`` and ``days`` to recovery, NaN when
    not recovered) per recovery measure."""
    if rule == "mst":
        rec = recovery_per_course(ctx.records, rule="mst")
        rec = rec[(rec["status"] != "no counts") & rec["course_id"].isin(keep)]
        days = rec["duration_days"].where(rec["status"] == "recovered")
        return [("ANC > 0.5 and platelets > 30 × 10⁹/L", "mst",
                 rec.assign(days=days)[["patient_id", "course_id", "days"]])]  # fmt: skip
    inf = ctx.records["infusions"][["course_id", "date"]].rename(columns={"date": "infusion_date"})
    starts = ctx.records["courses"][["course_id", "start_date"]].merge(inf, on="course_id")
    offset = (starts["infusion_date"] - starts["start_date"]).dt.days.set_axis(starts["course_id"])
    out = []
    for name, label in (("neutrophil", "Neutrophils ≥ 0.5 × 10⁹/L"), ("platelet", "Platelets ≥ 20 × 10⁹/L")):
        rec = recovery_per_course(ctx.records, rule=name)
        rec = rec[(rec["status"] != "no counts") & rec["course_id"].isin(keep)]
        days = (rec["end_day"] - pd.to_numeric(rec["course_id"].map(offset))).where(rec["status"] == "reached")
        out.append((label, "cibmtr", rec.assign(days=days)[["patient_id", "course_id", "days"]]))
    return out


def _summary(recovered: pd.DataFrame, courses: str) -> np.ndarray:
    """The values summarised: one per recovered course of the induction, or one per patient (the median of the
    patient's recovered courses) for all courses."""
    if courses == "all":
        return recovered.groupby("patient_id")["days"].median().to_numpy(float)
    return recovered["days"].to_numpy(float)
