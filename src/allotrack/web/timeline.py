"""One patient's timeline for the patient page, built from plain rows (no data frames: the page is the
application's hottest path and must render in a few milliseconds): the record tables, the daily counts with each
course's recovery window (:func:`allotrack.clinical.recovery.hematopoietic_recovery`, MST rule), the chimerism
series and the dated events (infusions, assessments' grades, adverse events, relapses, death). Every charted date
carries its day counted from the infusion before it (day 0 = the infusion; before the first one, negative days to
it). Only data: :mod:`allotrack.web.charts` draws them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from allotrack.clinical.recovery import hematopoietic_recovery
from allotrack.errors import AllotrackError
from allotrack.records.dictionary import DataDictionary
from allotrack.records.dictionary_store import stored_dictionary
from allotrack.records.schema import DICTIONARY_TABLES, TABLES
from allotrack.records.store import METADATA
from allotrack.web.auth import User
from allotrack.web.data import NotFound, scope_conditions

SHOWN = ("courses", "infusions", "interventions", "assessments", "observations", "relapses", "deaths", "adverse_events",
         "follow_up")  # fmt: skip
CHARTED = {"anc": "ANC", "plt": "PLT", "chimerism_pct": None}  # observations drawn as charts, not listed
HIDDEN = {"inputs", "study_day"}  # columns not listed (raw assessment inputs stay in the record and the audit)
UNITS = {"ANC": "×10⁹/L", "PLT": "×10⁹/L"}
RULE = ("start: first of 3 consecutive days with ANC < 2 and PLT < 100 ×10⁹/L after the course's chemotherapy; "
        "end: first of 3 consecutive days with ANC > 0.5 and PLT > 30 ×10⁹/L")  # hematopoietic_recovery's defaults


@dataclass(frozen=True)
class Series:
    """One charted measurement in date order: ISO dates, values in ``unit``, each date's day from infusion
    (``days``) and the infusion's number it counts from (``infusions``; None without any infusion), and a note
    per value (method, specimen) when there is one."""

    name: str
    unit: str
    dates: list[str]
    values: list[float]
    days: list[int | None]
    infusions: list[int | None]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """A course's hematopoietic recovery window (MST rule): ISO start and end dates and the duration in days."""

    course: int
    start: str
    end: str
    duration_days: float


@dataclass(frozen=True)
class Event:
    """A dated event: ``kind`` (Infusion, Assessment, Adverse event, Relapse, Death) and what it was."""

    kind: str
    date: str
    day: int | None
    infusion: int | None
    label: str


@dataclass(frozen=True)
class Timeline:
    patient: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    counts: dict[str, Series]  # ANC and PLT
    windows: list[Window]
    chimerism: Series
    lod: float | None  # the lowest limit of detection of the chimerism values
    events: list[Event]
    rule: str = RULE


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

    infused = sorted(d for d in (_as_date(r["date"]) for r in data["infusions"]) if d is not None)
    dated = sorted((r for r in data["observations"] if r["date"] is not None), key=lambda r: str(r["date"]))
    labs = [{**r, "analyte": CHARTED[r["item"]]} for r in dated
            if r["item"] in ("anc", "plt") and r["value"] is not None]  # fmt: skip
    counts = {a: _series(a, UNITS[a], [r for r in labs if r["analyte"] == a], infused) for a in ("ANC", "PLT")}
    windows = [Window(n, (origin + timedelta(days=a)).isoformat(), (origin + timedelta(days=b)).isoformat(), b - a)
               for n, a, b in _recovery_bands(data["courses"], labs, day)]  # fmt: skip
    ch = [r for r in dated if r["item"] == "chimerism_pct" and r["value"] is not None]
    lods = [float(r["lod"]) for r in ch if r["lod"] is not None]
    chim = _series("Donor chimerism", "%", ch, infused)
    data["observations"] = [r for r in data["observations"] if r["item"] not in CHARTED]
    for name, code_column in DICTIONARY_TABLES.items():
        if name in data:
            data[name] = _labelled(data[name], code_column, dictionary)
    events = _events(data, infused)
    tables = {name: [{k: _cell(v) for k, v in r.items() if k != "patient_id" and k not in HIDDEN} for r in data[name]]
              for name in SHOWN}  # fmt: skip
    return Timeline({k: _cell(v) for k, v in patient.items()}, tables, counts, windows, chim,
                    min(lods) if lods else None, events)  # fmt: skip


def _from_infusion(dates: list[date], infused: list[date]) -> tuple[list[int | None], list[int | None]]:
    """Each date's day counted from the latest infusion on or before it (before the first: negative days to the
    first) and that infusion's number (1-based)."""
    if not infused or not dates:
        return [None] * len(dates), [None] * len(dates)
    at = np.asarray(dates, dtype="datetime64[D]")
    inf = np.asarray(infused, dtype="datetime64[D]")
    k = np.maximum(np.searchsorted(inf, at, side="right") - 1, 0)
    days = (at - inf[k]).astype(int)
    return days.tolist(), (k + 1).tolist()


def _series(name: str, unit: str, rows: list[dict[str, Any]], infused: list[date]) -> Series:
    dates = [_as_date(r["date"]) or date.min for r in rows]
    days, numbers = _from_infusion(dates, infused)
    notes = [", ".join(str(r[k]) for k in ("method", "specimen") if r.get(k)) for r in rows]
    return Series(name, unit, [d.isoformat() for d in dates], [float(r["value"]) for r in rows], days, numbers,
                  notes if any(notes) else [])  # fmt: skip


def _events(data: dict[str, list[dict[str, Any]]], infused: list[date]) -> list[Event]:
    """The dated events of the (labelled) record tables, in date order."""
    found: list[tuple[str, Any, str]] = []
    for n, r in enumerate(sorted(data["infusions"], key=lambda r: str(r["date"])), start=1):
        dose = f", CD34 {_cell(r['cd34_per_kg'])} ×10⁶/kg" if r.get("cd34_per_kg") is not None else ""
        found.append(("Infusion", r["date"], f"infusion {n}: {r.get('product') or 'product not given'}{dose}"))
    found += [("Assessment", r["date"], f"{r['item']}: {r['value_text']}") for r in data["assessments"]
              if r.get("value_text") is not None]  # fmt: skip
    found += [("Adverse event", r["start_date"], f"{r['term']} (grade {_cell(r['grade'])})")
              for r in data["adverse_events"]]  # fmt: skip
    found += [("Relapse", r["date"], f"relapse ({r['kind']})" if r.get("kind") else "relapse")
              for r in data["relapses"]]  # fmt: skip
    found += [("Death", r["date"], f"death ({r['cause']})" if r.get("cause") else "death") for r in data["deaths"]]
    kept = sorted(((k, d, text) for k, v, text in found if (d := _as_date(v)) is not None), key=lambda e: e[1])
    days, numbers = _from_infusion([d for _, d, _ in kept], infused)
    return [Event(k, d.isoformat(), day, n, text) for (k, d, text), day, n in zip(kept, days, numbers, strict=True)]


def _recovery_bands(courses: list[dict[str, Any]], labs: list[dict[str, Any]],
                    day: Any) -> list[tuple[int, float, float]]:  # fmt: skip
    """Each course's MST recovery window (aplasia start to recovery): the course's number and the start and end in
    days since diagnosis."""
    starts = sorted(day(c["start_date"]) for c in courses)
    ends = {day(c["start_date"]): day(c["end_date"]) if c["end_date"] is not None else None for c in courses}
    numbers = {day(c["start_date"]): c.get("number") for c in courses}
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
            bands.append((int(numbers[start] or i + 1), start + w.start_day, start + w.end_day))
    return bands
