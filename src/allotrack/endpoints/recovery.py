"""Count recovery per treatment course from the lab records, with :mod:`allotrack.clinical.recovery`.

For every course the ANC and platelet values from the course start up to the next course (or the end of the
records) are taken; ``rule="mst"`` gives the microtransplantation recovery window (start, end and duration in
days after the course start), ``"neutrophil"`` / ``"platelet"`` the CIBMTR recovery day after the course start
(platelet transfusions are read from the ``transfused`` flag of platelet lab rows).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from allotrack.clinical import recovery as rc
from allotrack.errors import InputError
from allotrack.records import views
from allotrack.records.schema import Records


def recovery_per_course(records: Records, rule: str = "mst") -> pd.DataFrame:
    """One row per course: patient_id, course_id, number, status, start_day, end_day, duration_days."""
    if rule not in ("mst", "neutrophil", "platelet"):
        raise InputError(f"rule must be 'mst', 'neutrophil' or 'platelet', not {rule!r}", column="rule")
    courses = records["courses"].sort_values(["patient_id", "start_date"], kind="stable").copy()
    courses["next_start"] = courses.groupby("patient_id")["start_date"].shift(-1)
    labs = views.counts(records, ("ANC", "PLT"))
    anc = labs[labs["analyte"] == "ANC"]
    plt = labs[labs["analyte"] == "PLT"]
    by_patient_anc = dict(tuple(anc.groupby("patient_id")))
    by_patient_plt = dict(tuple(plt.groupby("patient_id")))
    rows = []
    # one call per course: each course's series is a separate clinical evaluation
    course_rows: list[dict[str, Any]] = courses.to_dict("records")  # type: ignore[assignment]
    for c in course_rows:
        start = pd.Timestamp(c["start_date"])
        stop = pd.Timestamp(c["next_start"]) if pd.notna(c["next_start"]) else pd.Timestamp.max

        def window(frame: pd.DataFrame | None, start: pd.Timestamp = start, stop: pd.Timestamp = stop) -> pd.DataFrame:
            if frame is None:
                return pd.DataFrame(columns=["date", "value", "transfused"])
            return frame[(frame["date"] >= start) & (frame["date"] < stop)]

        a, p = window(by_patient_anc.get(c["patient_id"])), window(by_patient_plt.get(c["patient_id"]))
        row = {"patient_id": c["patient_id"], "course_id": c["course_id"], "number": c["number"]}
        if rule == "mst":
            days = sorted(set(a["date"]) & set(p["date"]))
            if not days:
                rows.append({**row, "status": "no counts"})
                continue
            av = a.groupby("date")["value"].min().reindex(days)
            pv = p.groupby("date")["value"].min().reindex(days)
            offsets = [(d - start).days for d in days]
            end_chemo = (pd.Timestamp(c["end_date"]) - start).days if pd.notna(c["end_date"]) else 0
            res = rc.hematopoietic_recovery(offsets, list(av), list(pv), chemotherapy_end=end_chemo)
            rows.append({**row, "status": res.status, "start_day": res.start_day, "end_day": res.end_day,
                         "duration_days": res.duration_days})  # fmt: skip
        else:
            series = a if rule == "neutrophil" else p
            if not len(series):
                rows.append({**row, "status": "no counts"})
                continue
            offsets = [(d - start).days for d in series["date"]]
            if rule == "neutrophil":
                out = rc.neutrophil_engraftment(offsets, list(series["value"]))
            else:
                tx = [(d - start).days for d, t in zip(series["date"], series["transfused"], strict=True) if t is True]
                out = rc.platelet_engraftment(offsets, list(series["value"]), transfusion_days=tx)
            rows.append({**row, "status": out.status, "end_day": out.day})
    columns = ["patient_id", "course_id", "number", "status", "start_day", "end_day", "duration_days"]
    table = pd.DataFrame(rows, columns=columns)  # every column, also when no course has counts
    return table.astype({"start_day": "float64", "end_day": "float64", "duration_days": "float64"})
