"""Patients who need attention, computed from the records on every request (never stored):

* **GVHD risk after MST** — donor chimerism > 1 % 5–10 days after an infusion together with fever, rash,
  diarrhoea or liver injury (an adverse event or a GVHD assessment within 3 days); without symptoms the alert
  asks for repeat testing (:func:`allotrack.clinical.chimerism.mst_gvhd_alert`).
* **No count recovery by day 30** — a course whose ANC has not recovered (CIBMTR: 3 days ≥ 0.5) 30 days after its
  start, while counts were measured after day 30 or the course started more than 30 days ago.
* **Severe acute GVHD** — an assessment of MAGIC grade III–IV.
* **Follow-up missing** — alive, last contact more than 6 months ago.

Patients who have died raise no alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from allotrack.clinical.chimerism import mst_gvhd_alert
from allotrack.endpoints.recovery import recovery_per_course
from allotrack.records import views
from allotrack.records.dates import DAYS_PER_MONTH
from allotrack.records.schema import Records

SYMPTOM_TERMS = {"fever": "fever", "pyrexia": "fever", "rash": "rash", "diarrhoea": "diarrhoea",
                 "diarrhea": "diarrhoea", "liver": "liver injury", "hepat": "liver injury",
                 "bilirubin": "liver injury"}  # fmt: skip


@dataclass(frozen=True)
class Alert:
    patient_id: str
    kind: str
    severity: str  # "high" | "watch"
    date: date | None
    message: str


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")  # type: ignore[return-value]


def _symptoms(records: Records, g: pd.DataFrame, pid: str, day: pd.Timestamp) -> list[str]:
    """Symptoms near ``day``: adverse-event terms within 3 days, and acute GVHD of any grade in ``g`` (the GVHD
    view, computed once by the caller)."""
    found: set[str] = set()
    ae = records["adverse_events"]
    near = ae[(ae["patient_id"] == pid) & ((ae["start_date"] - day).abs() <= pd.Timedelta(days=3))]
    for term in near["term"].astype(str).str.lower():
        found.update(v for k, v in SYMPTOM_TERMS.items() if k in term)
    if ((g["patient_id"] == pid) & ((g["date"] - day).abs() <= pd.Timedelta(days=3))
            & (pd.to_numeric(g["grade"]).fillna(0) >= 1)).any():  # fmt: skip
        found.add("rash")  # an acute GVHD assessment with organ involvement
    return sorted(found)


def chimerism_alerts(records: Records) -> list[Alert]:
    out = []
    inf = records["infusions"][["patient_id", "date"]].rename(columns={"date": "infusion"})
    pairs = views.chimerism(records).merge(inf, on="patient_id")
    pairs = pairs.assign(days=(pairs["date"] - pairs["infusion"]).dt.days)
    pairs = pairs[(pairs["days"] >= 5) & (pairs["days"] <= 10) & (pairs["donor_percent"] > 1.0)]
    g = views.gvhd(records) if len(pairs) else None
    for row in _rows(pairs.drop_duplicates(["patient_id", "date"])):
        pid, when = str(row["patient_id"]), pd.Timestamp(row["date"])
        assert g is not None
        alert = mst_gvhd_alert(float(row["donor_percent"]), float(row["days"]), _symptoms(records, g, pid, when))
        out.append(Alert(pid, "GVHD risk after MST" if alert.alert else "Repeat chimerism",
                         "high" if alert.alert else "watch", when.date(), alert.reason))  # fmt: skip
    return out


def recovery_alerts(records: Records, today: date) -> list[Alert]:
    if records["courses"].empty or not records["observations"]["item"].eq("anc").any():  # no neutrophil counts
        return []
    rec = recovery_per_course(records, rule="neutrophil")
    starts = records["courses"].set_index("course_id")["start_date"]
    out = []
    for row in _rows(rec):
        start = starts.get(row["course_id"])
        if start is None or pd.isna(start):
            continue
        late = row["status"] == "reached" and pd.notna(row["end_day"]) and float(row["end_day"]) > 30
        missing = row["status"] == "not reached" and (pd.Timestamp(today) - start).days > 30
        if late or missing:
            what = f"on day {float(row['end_day']):g}" if late else "not yet"
            out.append(Alert(str(row["patient_id"]), "No count recovery by day 30", "high", start.date(),
                             f"course {int(row['number'])}: ANC recovery {what}"))  # fmt: skip
    return out


def gvhd_alerts(records: Records) -> list[Alert]:
    g = views.gvhd(records)
    severe = g[(g["kind"] == "acute") & (pd.to_numeric(g["grade"]) >= 3)]
    return [Alert(str(r["patient_id"]), "Severe acute GVHD", "high", pd.Timestamp(r["date"]).date(),
                  f"MAGIC grade {int(r['grade'])}") for r in _rows(severe)]  # fmt: skip


def follow_up_alerts(records: Records, today: date, months: int = 6) -> list[Alert]:
    fu = records["follow_up"]
    dead = set(records["deaths"]["patient_id"])
    cutoff = pd.Timestamp(today - timedelta(days=round(months * DAYS_PER_MONTH)))
    late = fu[(fu["last_contact_date"] < cutoff) & ~fu["patient_id"].isin(dead)]
    return [Alert(str(r["patient_id"]), "Follow-up missing", "watch", pd.Timestamp(r["last_contact_date"]).date(),
                  f"last contact more than {months} months ago") for r in _rows(late)]  # fmt: skip


def all_alerts(records: Records, today: date | None = None) -> list[Alert]:
    day = today or date.today()
    alerts = chimerism_alerts(records) + recovery_alerts(records, day) + gvhd_alerts(records)
    alerts += follow_up_alerts(records, day)
    dead = set(records["deaths"]["patient_id"])  # attention is for living patients
    alerts = [a for a in alerts if a.patient_id not in dead]
    return sorted(alerts, key=lambda a: (a.severity != "high", a.patient_id, a.date or date.min))
