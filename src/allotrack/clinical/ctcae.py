"""CTCAE v5.0 worst grade per patient, per term and per system organ class (NCI, 27 Nov 2017;
``reference/clinical-definitions.md`` §8). Each patient counts once per term (and once per SOC) at the highest
grade observed; events with a missing grade are left out of the grade tables and counted in ``n_missing_grade``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError

CTCAE5 = "CTCAE v5.0 (NCI 2017): worst grade per patient"


@dataclass(frozen=True)
class WorstGrades:
    by_term: pd.DataFrame  # patient, soc, term, grade
    by_soc: pd.DataFrame  # patient, soc, grade
    n_missing_grade: int
    rule: str


def worst_grades(
    events: Any, patient: str = "patient", term: str = "term", soc: str = "soc", grade: str = "grade"
) -> WorstGrades:
    """Worst grade per patient per term and per SOC from adverse-event records (one row per event)."""
    frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame(events)
    missing_cols = [c for c in (patient, term, soc, grade) if c not in frame.columns]
    if missing_cols:
        raise InputError(f"adverse events lack column(s) {missing_cols}", table="adverse_events")
    g = pd.to_numeric(frame[grade], errors="coerce")
    text_grades = g.isna() & frame[grade].notna()
    if text_grades.any():
        rows = np.flatnonzero(text_grades.to_numpy())
        raise InputError("CTCAE grade must be a number 1–5", table="adverse_events", column=grade,
                         rows=rows[:5].tolist(), values=frame[grade].to_numpy()[rows[:5]].tolist(),
                         n_bad=rows.size)  # fmt: skip
    bad = g.notna() & ~g.isin([1, 2, 3, 4, 5])
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise InputError("CTCAE grade must be 1, 2, 3, 4 or 5", table="adverse_events", column=grade,
                         rows=rows[:5].tolist(), values=g.to_numpy()[rows[:5]].tolist(), n_bad=rows.size)  # fmt: skip
    for col in (patient, term, soc):
        empty = frame[col].isna()
        if empty.any():
            rows = np.flatnonzero(empty.to_numpy())
            raise InputError(f"{col} must not be missing", table="adverse_events", column=col,
                             rows=rows[:5].tolist(), n_bad=rows.size)  # fmt: skip
    graded = frame.assign(_grade=g).dropna(subset=["_grade"])
    by_term = (
        graded.groupby([patient, soc, term], sort=True, observed=True)["_grade"].max().astype(int)
        .rename("grade").reset_index()
    )  # fmt: skip
    by_soc = graded.groupby([patient, soc], sort=True, observed=True)["_grade"].max().astype(int)
    return WorstGrades(by_term, by_soc.rename("grade").reset_index(), int(g.isna().sum()), CTCAE5)
