"""The patient page's record listing: every current record of one patient, table by table, with the row id its
"Edit" link needs and the "Add" links of the data-entry forms (:mod:`allotrack.web.routes.entry`). Dictionary
items and coded values read as their labels, as a case report form shows them; columns empty in every row are
left out; long tables (daily blood counts) come folded. Plain rows, one indexed query per table."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from allotrack.records.dictionary import DataDictionary
from allotrack.records.dictionary_store import stored_dictionary
from allotrack.records.schema import DICTIONARY_TABLES, TABLES
from allotrack.records.store import METADATA
from allotrack.web.auth import User
from allotrack.web.data import scope_conditions
from allotrack.web.entry import ENTRY_TABLES, label_of

SECTIONS = ("donors", "courses", "infusions", "observations", "interventions", "assessments", "attributes", "relapses",
            "adverse_events", "deaths", "follow_up")  # fmt: skip
TITLES = {"donors": "Donors", "courses": "Courses", "infusions": "Infusions", "observations": "Observations",
          "interventions": "Interventions", "assessments": "Assessments and responses",
          "attributes": "Patient attributes", "relapses": "Relapses", "adverse_events": "Adverse events",
          "deaths": "Death", "follow_up": "Follow-up"}  # fmt: skip
NOT_LISTED = {"patient_id", "inputs"}  # the page is the patient's; raw assessment inputs stay in the record and audit
ONE_PER_PATIENT = ("deaths", "follow_up")  # keyed by the patient: edited, not added twice
FOLDED_OVER = 25  # rows: a longer table comes folded (<details>)


@dataclass(frozen=True)
class Row:
    row_id: int
    cells: list[str]


@dataclass(frozen=True)
class Section:
    table: str
    title: str
    what: str  # one record, in words ("adverse event")
    columns: list[str]  # labels
    rows: list[Row]
    addable: bool  # False for a patient's death or follow-up once recorded (edit it instead)

    @property
    def folded(self) -> bool:
        return len(self.rows) > FOLDED_OVER


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()[:10]
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _labelled(row: dict[str, Any], code_column: str, dictionary: DataDictionary) -> dict[str, Any]:
    code = row.get(code_column)
    if code is None or code not in dictionary:
        return row
    item = dictionary.item(str(code))
    shown = {**row, code_column: item.label or code}
    if item.type == "yesno" and row.get("value") is not None:
        shown["value"] = item.choice_label("1" if row["value"] else "0")
    elif row.get("value_text") is not None and item.choices:
        try:
            shown["value_text"] = item.choice_label(str(row["value_text"]))
        except KeyError:
            pass
    return shown


@dataclass(frozen=True)
class Listing:
    patient_row_id: int | None  # the patient record's (its "Edit patient" link)
    sections: list[Section]

    def __iter__(self) -> Iterator[Section]:
        return iter(self.sections)


def patient_sections(engine: sa.Engine, user: User, patient_id: str) -> Listing:
    """The listing of one patient's records (of the user's data access group; nothing for another centre's)."""
    out = []
    p = METADATA.tables["patients"]
    with engine.connect() as conn:
        dictionary = stored_dictionary(conn)
        patient_row = conn.execute(sa.select(p.c.row_id).where(p.c.patient_id == patient_id,
                                                               *scope_conditions(p, user))).scalar()  # fmt: skip
        for name in SECTIONS:
            t = METADATA.tables[name]
            cols = [c.name for c in TABLES[name].columns if c.name not in NOT_LISTED]
            query = sa.select(t.c.row_id, *[t.c[c] for c in cols]).where(t.c.patient_id == patient_id,
                                                                          *scope_conditions(t, user))  # fmt: skip
            rows = [dict(r) for r in conn.execute(query.order_by(t.c.row_id)).mappings()]
            code_column = DICTIONARY_TABLES.get(name)
            if code_column is not None:
                rows = [_labelled(r, code_column, dictionary) for r in rows]
            shown = [c for c in cols if any(_text(r[c]) for r in rows)]
            out.append(Section(name, TITLES[name], ENTRY_TABLES[name], [label_of(c) for c in shown],
                               [Row(int(r["row_id"]), [_text(r[c]) for c in shown]) for r in rows],
                               addable=not (name in ONE_PER_PATIENT and rows)))  # fmt: skip
    return Listing(int(patient_row) if patient_row is not None else None, out)
