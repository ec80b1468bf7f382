"""One patient's timeline for the patient page, built from plain rows (no data frames: the page is the
application's hottest path and must render in a few milliseconds): the record tables, the daily counts with each
course's recovery window (:func:`allotrack.clinical.recovery.hematopoietic_recovery`, MST rule) and the chimerism
series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from allotrack.clinical.recovery import hematopoietic_recovery
from allotrack.errors import AllotrackError
from allotrack.records.dictionary import DataDictionary
from allotrack.records.dictionary_store import stored_dictionary
from allotrack.records.schema import DICTIONARY_TABLES, TABLES
from allotrack.records.store import METADATA
from allotrack.web.auth import User
from allotrack.web.data import NotFound, scope_conditions
from allotrack.web.svg import line_chart

SHOWN = ("courses", "infusions", "interventions", "assessments", "observations", "relapses", "deaths", "adverse_events",
         "follow_up")  # fmt: skip
CHARTED = {"anc": "ANC", "plt": "PLT", "chimerism_pct": None}  # observations drawn as charts, not listed
HIDDEN = {"inputs", "study_day"}  # columns not listed (raw assessment inputs stay in the record and the audit)


@dataclass(frozen=True)
class Timeline:
    patient: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    counts_svg: str
    chimerism_svg: str


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _rows(conn: sa.Connection, name: str, patient_id: str, user: User) -> list[dict[str, Any]]:
    t = METADATA.tables[name]
    cols = [c.name for c in TABLES[name].columns]
    q = sa.select(*[t.c[c] for c in cols]).where(t.c.patient_id == patient_id, *scope_conditions(t, user))
    return [dict(zip(cols, r, strict=True)) for r in conn.execute(q.order_by(t.c.row_id))]


def _labelled(rows: list[dict[str, Any]], code_column: str, dictionary: DataDictionary) -> list[dict[str, Any]]:
    """Rows of a dictionary-driven kind with the item's label for its code and a choice's label for its code, as
    a case report form shows them."""
    out = []
    for r in rows:
        code = r[code_column]
        if code not in dictionary:
            out.append(r)
            continue
        item = dictionary.item(code)
        shown = {**r, code_column: item.label or code}
        if r.get("value_text") is not None and item.choices:
            try:
                shown["value_text"] = item.choice_label(str(r["value_text"]))
            except KeyError:
                pass
        out.append(shown)
    return out


def patient_timeline(engine: sa.Engine, user: User, patient_id: str) -> Timeline:
    with engine.connect() as conn:
        data = {name: _rows(conn, name, patient_id, user) for name in ("patients", *SHOWN)}
        dictionary = stored_dictionary(conn)
    if not data["patients"]:
        raise NotFound("no such patient in your data access group")
    patient = data["patients"][0]
    origin = _as_date(patient["diagnosis_date"])
    assert origin is not None  # required by the schema

    def day(v: Any) -> float:
        d = _as_date(v)
        return float((d - origin).days) if d is not None else float("nan")

    dated = sorted((r for r in data["observations"] if r["date"] is not None), key=lambda r: str(r["date"]))
    labs = [{**r, "analyte": CHARTED[r["item"]]} for r in dated if r["item"] in ("anc", "plt")]
    series: dict[str, tuple[Sequence[float], Sequence[float]]] = {
        a: ([day(r["date"]) for r in labs if r["analyte"] == a], [float(r["value"]) for r in labs if r["analyte"] == a])
        for a in ("ANC", "PLT")}  # fmt: skip
    bands = _recovery_bands(data["courses"], labs, day)
    counts = line_chart(series, log_y=True, bands=bands, hlines=[(0.5, "ANC 0.5"), (20, "PLT 20")],
                        x_label="Days since diagnosis", y_label="×10⁹/L")  # fmt: skip
    ch = [r for r in dated if r["item"] == "chimerism_pct" and r["value"] is not None]
    lods = [float(r["lod"]) for r in ch if r["lod"] is not None]
    chim = line_chart({"Donor %": ([day(r["date"]) for r in ch], [float(r["value"]) for r in ch])},
                      log_y=True, hlines=[(min(lods), "limit of detection")] if lods else [],
                      x_label="Days since diagnosis", y_label="Donor chimerism (%)")  # fmt: skip
    data["observations"] = [r for r in data["observations"] if r["item"] not in CHARTED]
    for name, code_column in DICTIONARY_TABLES.items():
        if name in data:
            data[name] = _labelled(data[name], code_column, dictionary)
    tables = {name: [{k: _cell(v) for k, v in r.items() if k != "patient_id" and k not in HIDDEN} for r in data[name]]
              for name in SHOWN}  # fmt: skip
    return Timeline({k: _cell(v) for k, v in patient.items()}, tables, counts, chim)


def _recovery_bands(courses: list[dict[str, Any]], labs: list[dict[str, Any]], day: Any) -> list[tuple[float, float]]:
    """Each course's MST recovery window (aplasia start to recovery), in days since diagnosis."""
    starts = sorted(day(c["start_date"]) for c in courses)
    ends = {day(c["start_date"]): day(c["end_date"]) if c["end_date"] is not None else None for c in courses}
    by_day: dict[float, dict[str, float]] = {}
    for r in labs:
        cell = by_day.setdefault(day(r["date"]), {})
        cell[r["analyte"]] = min(float(r["value"]), cell.get(r["analyte"], float("inf")))
    both = sorted(d for d, v in by_day.items() if "ANC" in v and "PLT" in v)
    bands = []
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else float("inf")
        days = [d for d in both if start <= d < stop]
        if not days:
            continue
        try:
            w = hematopoietic_recovery([d - start for d in days], [by_day[d]["ANC"] for d in days],
                                       [by_day[d]["PLT"] for d in days],
                                       chemotherapy_end=(ends[start] or start) - start)  # fmt: skip
        except AllotrackError:
            continue
        if w.status == "recovered" and w.start_day is not None and w.end_day is not None:
            bands.append((start + w.start_day, start + w.end_day))
    return bands
