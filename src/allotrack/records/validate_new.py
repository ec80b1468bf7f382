"""Incremental validation of new records of one stored patient (a web form's save): the rules of
:func:`allotrack.records.validate.validate_records` that the new rows can change, run on the new rows and on only
the patient's stored rows those rules read, instead of re-validating every record of the patient.

:func:`validate_new` reports exactly the problems that full validation of the patient's stored records plus the
new rows reports and full validation of the stored records alone does not (the stored records were valid, or are
invalid for reasons the new rows do not touch — neither is the new rows' business). New rows are named by their
0-based position among the new rows; a stored record whose verdict the new rows change by its natural key
(``Problem.stored``, as an import names it). ``tests/records/test_validate_new.py`` checks this equivalence
against full validation for random small patients (a hypothesis property).

Which rules run, and why nothing else can change:

- column rules (required values, types, ranges, allowed values) and the data dictionary's item rules (item known
  and of the table's kind, numbers and units, choices, yes/no, dates, raw inputs JSON, date or visit) look at one
  row at a time: they run on the new rows only (the same functions, ``type_tables`` and ``check_items``);
- the rules of ``check_tables`` (rows across tables; restated for the new rows in :func:`_row_rules`, with the same
  rule texts and values shown) within one row — dates in the future, a course or intervention ending before it
  starts, randomised before enrolment — likewise;
- duplicate natural keys: among the new rows, and against the patient's stored rows of the table by ``key_hash``
  (the store's hash of the natural key, under the same unique index the insert relies on);
- references: the patient exists (read with its centre: a patient of another data access group is unknown), and
  an infusion's course and donor, an intervention's course, are the patient's (the patient's courses and donors);
- chronology of the new rows against the patient: more than a year before diagnosis (the patient row), after the
  patient's death (the stored death), death before diagnosis, relapse before the first remission (the patient's
  response assessments), last contact before the latest dated record (for a new follow-up row: the latest stored
  event or death date, one aggregate query);
- chronology the new rows change for stored records: a new event or death date later than the stored last contact
  makes that follow-up record wrong (unless it already was, by a stored date); a new death makes every stored event
  after it wrong (unless a death was stored already: the first death counts). Nothing else in the chronology
  rules can turn a stored record invalid: a new remission only moves the first remission earlier, a new course or
  donor only makes references resolve;
- branching logic (item conditions) and required attributes, when the dictionary has any: the condition of an
  observation or assessment reads the patient's attributes and the same table's rows of the same patient and day
  (or visit), so the new rows and those stored rows are checked with and without the new rows and the difference
  is reported; new attributes change what every conditioned row of the patient and the required attributes read,
  so then all of the patient's attributes, observations and assessments take part.

Cost: a few indexed queries of the patient's rows (the patient, the stored death and last contact, the key hashes,
and only for the rarer tables the rest) and the column rules on the new rows — independent of how many records the
patient has. The dictionary in force is read by :func:`allotrack.records.dictionary_store.stored_dictionary`
(parsed once per version and process).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allotrack.errors import AllotrackError
from allotrack.records.schema import EVENT_DATES, TABLES, Records
from allotrack.records.tables import METADATA, typed_frame
from allotrack.records.validate import Problem, ValidationError, key_label, type_tables

if TYPE_CHECKING:
    from allotrack.records.dictionary import DataDictionary

DATED = (*EVENT_DATES, ("deaths", "date"))  # what "the patient's latest dated record" is taken over
LAST_CONTACT_RULE = "last contact before the patient's latest dated record"
REFERRED = {"infusions": ("courses", "donors"), "interventions": ("courses",)}  # tables whose ids the rows name


class UnknownPatient(AllotrackError, LookupError):
    """No current patient with this id (in the centre given)."""


@dataclass(frozen=True)
class NewRecords:
    """Valid new rows: typed and converted to the dictionary's units as full validation types them, their content
    and natural-key hashes (unsigned 64-bit, :func:`allotrack.records.hashing.content_and_key_values`) and the
    patient's centre."""

    table: str
    rows: pd.DataFrame
    content: np.ndarray
    key: np.ndarray
    centre: str | None


def validate_new(conn: sa.Connection, table: str, rows: pd.DataFrame, patient_id: str, dictionary: DataDictionary,
                 today: date | None = None, centre: str | None = None) -> NewRecords:  # fmt: skip
    """Check new rows of ``table`` (raw values, schema columns) of the stored patient ``patient_id`` (of
    ``centre`` when given; :class:`UnknownPatient` otherwise) against the rules they can affect (see the module
    docstring); raise :class:`ValidationError` with every problem, new rows named by position, stored records by
    natural key."""
    from allotrack.records.hashing import content_and_key_values
    from allotrack.records.validate_items import check_items

    today = today or date.today()
    patient = _patient(conn, patient_id, centre)
    if patient is None:
        raise UnknownPatient("no such patient")
    stated = rows.reset_index(drop=True)  # an optional column missing in every new row is typed as missing
    stated = stated[[c.name for c in TABLES[table].columns if c.required or stated[c.name].notna().any()]]
    clean, problems = type_tables(Records({table: stated}))
    items = check_items({table: clean[table]}, dictionary)
    problems.extend(items.problems)
    new = items.tables[table]
    content, key = content_and_key_values(new, table)
    problems.extend(_duplicates(conn, table, new, key, patient_id))
    problems.extend(_row_rules(conn, table, new, patient, today))
    if table == "follow_up":
        problems.extend(_last_contact_of_new(conn, new, patient_id))
    if any(t == table for t, _ in DATED):
        problems.extend(_last_contact_after(conn, table, new, patient_id))
    if table == "deaths":
        problems.extend(_events_after_death(conn, new, patient_id))
    problems.extend(_conditions(conn, table, new, patient_id, dictionary))
    if problems:
        raise ValidationError(problems)
    return NewRecords(table, new, content, key, patient.centre_code)


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    centre_code: str | None
    diagnosis: Any  # the diagnosis date (Timestamp)


def _row_rules(conn: sa.Connection, table: str, new: pd.DataFrame, patient: _Patient, today: date) -> list[Problem]:
    """The rules of :func:`allotrack.records.validate.check_tables` on the new rows (all of one patient), with the
    patient's values they compare with: future dates, references (patient, the patient's courses and donors),
    and the chronology — before diagnosis, after death, ends before it starts, randomised before enrolment,
    relapse before the first remission. Same rule texts, same values shown."""
    problems: list[Problem] = []
    spec = TABLES[table]

    def flag(mask: Any, column: str, rule: str, shown: bool = True) -> None:
        for r in np.flatnonzero(np.asarray(mask, dtype=bool)):
            value = str(new[column].iloc[r].date()) if shown else None
            problems.append(Problem(table, int(r), column, value, rule))

    if not len(new):
        return problems
    for col in spec.columns:
        values = new[col.name]
        if col.kind == "date":
            flag(values.notna() & (values > pd.Timestamp(today)), col.name, "date is in the future")
        if col.references == "patients.patient_id":
            flag(values.notna() & (values != patient.patient_id), col.name, "refers to an unknown patient", False)
        elif col.references and values.notna().any():
            ref_table, ref_col = col.references.split(".")
            t = METADATA.tables[ref_table]
            known = list(conn.execute(sa.select(t.c[ref_col]).where(*_current(t, patient.patient_id))).scalars())
            flag(values.notna() & ~values.isin(known), col.name,
                 f"refers to an unknown {ref_table[:-1]} (or one of another patient)", False)  # fmt: skip
    dated = [col for t, col in EVENT_DATES if t == table]
    if dated:
        d = METADATA.tables["deaths"]
        death = conn.execute(sa.select(d.c.date).where(*_current(d, patient.patient_id)).order_by(d.c.row_id)
                             .limit(1)).scalar()  # fmt: skip
        for name in dated:
            if death is not None:
                flag(new[name] > _timestamp(death), name, "after the patient's death")
            flag(new[name] < patient.diagnosis - pd.Timedelta(days=365), name, "more than a year before diagnosis")
    if table == "deaths":
        flag(new["date"] < patient.diagnosis, "date", "death before diagnosis")
    if table in ("courses", "interventions"):
        what = table[:-1]
        flag(new["end_date"] < new["start_date"], "end_date", f"{what} ends before it starts")
    if table == "enrolments":
        flag(new["randomisation_date"] < new["enrolment_date"], "randomisation_date", "randomised before enrolment")
    if table == "relapses":
        from allotrack.records.schema import REMISSIONS
        from allotrack.records.views import RESPONSE_ITEMS, responses

        a = METADATA.tables["assessments"]
        stored = _stored(conn, "assessments", patient.patient_id, a.c.item.in_(list(RESPONSE_ITEMS)))
        resp = responses(Records({"assessments": stored}))
        first = resp.loc[resp["category"].isin(REMISSIONS), "date"].min()
        relapse = (new["kind"] != "progression").to_numpy(dtype=bool)
        before = np.ones(len(new), bool) if pd.isna(first) else (new["date"] < first).to_numpy(dtype=bool)
        flag(relapse & before, "date", "relapse before the first remission (or without any remission)")
    return problems


def _timestamp(value: Any) -> pd.Timestamp:
    """A stored date (ISO text from SQLite, a date from PostgreSQL) as a Timestamp."""
    return pd.Timestamp(str(value)[:10])


def _current(table: sa.Table, patient_id: str) -> list[Any]:
    """Current rows of a patient (``deleted = false``: the partial indexes' predicate, so that the index is used)."""
    return [table.c.deleted == sa.false(), table.c.patient_id == patient_id]


def _patient(conn: sa.Connection, patient_id: str, centre: str | None) -> _Patient | None:
    p = METADATA.tables["patients"]
    query = sa.select(p.c.patient_id, p.c.centre_code, p.c.diagnosis_date).where(*_current(p, patient_id))
    if centre is not None:
        query = query.where(p.c.centre_code == centre)
    row = conn.execute(query.order_by(p.c.row_id).limit(1)).first()
    if row is None:
        return None
    return _Patient(str(row.patient_id), row.centre_code, _timestamp(row.diagnosis_date))


def _stored(conn: sa.Connection, name: str, patient_id: str, *where: Any) -> pd.DataFrame:
    """The patient's current rows of a table, typed (in stored order)."""
    t = METADATA.tables[name]
    names = [c.name for c in TABLES[name].columns]
    rows = conn.execute(sa.select(*[t.c[n] for n in names]).where(*_current(t, patient_id), *where)
                        .order_by(t.c.row_id)).all()  # fmt: skip
    if not rows:
        return Records()[name]
    return typed_frame(pd.DataFrame([tuple(r) for r in rows], columns=names, dtype=object), TABLES[name])


def _duplicates(conn: sa.Connection, table: str, new: pd.DataFrame, key: np.ndarray, patient_id: str) -> list[Problem]:
    """A new row whose natural key an earlier new row or a stored row of the patient has (full validation: the
    patient's stored rows come first, so the new row is the later one)."""
    spec = TABLES[table]
    columns = list(spec.natural_key)
    t = METADATA.tables[table]
    hashes = key.view(np.int64)
    stored = {int(h) for h in conn.execute(sa.select(t.c.key_hash).where(*_current(t, patient_id),
                                                                        t.c.key_hash.in_(hashes.tolist()))).scalars()}
    flagged = new.duplicated(columns, keep="first").to_numpy() | np.isin(hashes, list(stored))
    flagged &= new[columns[0]].notna().to_numpy()
    rule = f"duplicate key: an earlier row has the same {key_label(table)}"
    return [Problem(table, int(r), spec.key, None, rule) for r in np.flatnonzero(flagged)]


def _stored_latest(conn: sa.Connection, patient_id: str) -> Any:
    """The patient's latest stored event or death date (NaT without any): one aggregate query."""
    parts = []
    for name, col in DATED:
        t = METADATA.tables[name]
        parts.append(sa.select(sa.func.max(t.c[col]).label("d")).where(*_current(t, patient_id)))
    union = sa.union_all(*parts).subquery()
    latest = conn.execute(sa.select(sa.func.max(union.c.d))).scalar()
    return pd.NaT if latest is None else pd.Timestamp(str(latest)[:10])


def _last_contact_of_new(conn: sa.Connection, new: pd.DataFrame, patient_id: str) -> list[Problem]:
    """A new follow-up row's last contact before the patient's latest stored dated record."""
    latest = _stored_latest(conn, patient_id)
    if pd.isna(latest):
        return []
    lc = new["last_contact_date"]
    return [Problem("follow_up", int(r), "last_contact_date", str(lc.iloc[r].date()), LAST_CONTACT_RULE)
            for r in np.flatnonzero((lc < latest).to_numpy())]  # fmt: skip


def _new_latest(table: str, new: pd.DataFrame) -> Any:
    dates = [new[col] for t, col in DATED if t == table]
    latest = pd.concat(dates).max() if dates else pd.NaT
    return pd.NaT if pd.isna(latest) else pd.Timestamp(latest)


def _last_contact_after(conn: sa.Connection, table: str, new: pd.DataFrame, patient_id: str) -> list[Problem]:
    """Stored follow-up records whose last contact the new dates now precede (and no stored date did)."""
    from allotrack.records.importing import describe

    newest = _new_latest(table, new)
    if pd.isna(newest):
        return []
    f = METADATA.tables["follow_up"]
    contacts = conn.execute(sa.select(f.c.last_contact_date).where(*_current(f, patient_id))).scalars()
    if not any(_timestamp(c) < newest for c in contacts if c is not None):  # the usual case: one small query
        return []
    fu = _stored(conn, "follow_up", patient_id)
    broken = (fu["last_contact_date"] < newest).to_numpy()
    latest = _stored_latest(conn, patient_id)
    if not pd.isna(latest):
        broken = broken & ~(fu["last_contact_date"] < latest).to_numpy()
    return [Problem("follow_up", None, "last_contact_date", str(fu["last_contact_date"].iloc[r].date()),
                    LAST_CONTACT_RULE, stored=describe("follow_up", fu.iloc[r])) for r in np.flatnonzero(broken)]


def _events_after_death(conn: sa.Connection, new: pd.DataFrame, patient_id: str) -> list[Problem]:
    """Stored events after a new death (when no death was stored: the first death row is the patient's)."""
    from allotrack.records.importing import describe

    d = METADATA.tables["deaths"]
    if conn.execute(sa.select(d.c.row_id).where(*_current(d, patient_id)).limit(1)).first() is not None:
        return []
    death = new["date"].iloc[0]
    if pd.isna(death):
        return []
    out: list[Problem] = []
    for name, col in EVENT_DATES:
        t = METADATA.tables[name]
        after = _stored(conn, name, patient_id, t.c[col] > death.date())
        out.extend(Problem(name, None, col, str(after[col].iloc[r].date()), "after the patient's death",
                           stored=describe(name, after.iloc[r])) for r in range(len(after)))  # fmt: skip
    return out


@cache
def _conditioned_kinds(dictionary: DataDictionary) -> frozenset[str]:
    """The item kinds with a condition, plus "required" when an attribute is required (per dictionary)."""
    kinds: set[str] = {item.kind for item in dictionary if item.condition is not None}
    if any(item.required and item.kind == "attribute" for item in dictionary):
        kinds.add("required")
    return frozenset(kinds)


def _conditions(conn: sa.Connection, table: str, new: pd.DataFrame, patient_id: str,
                dictionary: DataDictionary) -> list[Problem]:  # fmt: skip
    """Branching logic and required attributes: checked with and without the new rows on the stored rows they
    read; the problems only the first finds."""
    from allotrack.records.validate_items import KIND_OF_TABLE

    kinds = _conditioned_kinds(dictionary)
    if table not in KIND_OF_TABLE or not kinds:
        return []
    involved: tuple[str, ...]
    if table == "attributes":
        involved = ("patients", "attributes", "observations", "assessments")
    elif table == "interventions":
        involved = ("attributes",)  # an intervention's condition reads the attributes only
    else:
        involved = ("attributes", table)
    stored = {name: _stored(conn, name, patient_id) for name in involved}
    return _difference(table, new, stored, dictionary)


def _difference(table: str, new: pd.DataFrame, stored: dict[str, pd.DataFrame],
                dictionary: DataDictionary) -> list[Problem]:  # fmt: skip
    from allotrack.records.importing import describe
    from allotrack.records.validate_items import check_conditions

    def located(problems: list[Problem], with_new: bool) -> set[Problem]:
        out = set()
        for p in problems:
            n_stored = len(stored.get(p.table, ()))
            if p.row is None:
                out.add(p)
            elif p.row >= n_stored and with_new and p.table == table:
                out.add(Problem(p.table, p.row - n_stored, p.column, p.value, p.rule))
            else:
                out.add(Problem(p.table, None, p.column, p.value, p.rule,
                                stored=describe(p.table, stored[p.table].iloc[p.row])))  # fmt: skip
        return out

    combined = dict(stored)
    combined[table] = pd.concat([stored[table], new], ignore_index=True) if table in stored else new
    after = located(check_conditions(combined, dictionary).problems, True)
    before = located(check_conditions(dict(stored), dictionary).problems, False) if stored else set()
    return sorted(after - before, key=str)
