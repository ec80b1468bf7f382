"""Data-entry forms generated from the record schema (:data:`allotrack.records.schema.TABLES`) and the study's data
dictionary, and the parsing of what a form sends back (no HTTP here: :mod:`allotrack.web.routes.entry` serves the
pages).

A table's form has one field per schema column a person enters (derived values such as an observation's
``reported`` text, an assessment's computed ``rule`` and raw ``inputs``, and the randomised arm are left out):
the column's kind gives the input (dates, numbers with their allowed range as ``min``/``max``, a select for
choices and for yes/no), a reference to a donor or course is a select of the patient's own donors or courses,
and required columns are marked. A dictionary-driven table (observations, interventions, assessments, attributes)
starts with a select of the dictionary's items of its kind, grouped by the item's form; the chosen item decides the
value field (a number in the item's unit and range, a select of its choices, yes/no, a date or text).

:func:`parse_form` turns submitted text into typed values and one :class:`~allotrack.records.validate.Problem` per
bad field (``"age_at_diagnosis: 130 is above the highest allowed value 120"``); the rules across records
(chronology, references, duplicates) are the store's (:func:`allotrack.web.data.add_records`,
:func:`~allotrack.web.data.update_record`), whose problems :func:`field_errors` puts next to their field too.
Identifier values are never echoed in a message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from allotrack.records.schema import DICTIONARY_TABLES, TABLES, Column
from allotrack.records.validate import Problem

if TYPE_CHECKING:
    import pandas as pd

    from allotrack.records.dictionary import DataDictionary, Item

# the record kinds entered by form, and what one record is called (design records, enrolments, populations and
# matched sets, come from randomisation and the study design, not from a form)
ENTRY_TABLES: dict[str, str] = {
    "patients": "patient", "donors": "donor", "courses": "course", "infusions": "infusion",
    "observations": "observation", "interventions": "intervention", "assessments": "assessment",
    "attributes": "patient attribute", "relapses": "relapse", "deaths": "death", "follow_up": "follow-up",
    "adverse_events": "adverse event",
}  # fmt: skip
KIND_OF_TABLE = {"observations": "observation", "interventions": "intervention", "assessments": "assessment",
                 "attributes": "attribute"}  # fmt: skip
# columns no form shows: derived (reported, rule, inputs), set by randomisation (arm), or the centre (chosen apart)
LEFT_OUT: dict[str, tuple[str, ...]] = {"patients": ("centre", "randomization_date", "arm"),
                                        "observations": ("reported",), "assessments": ("rule", "inputs")}  # fmt: skip
LABELS = {
    "patient_id": "Patient id", "donor_id": "Donor id", "course_id": "Course", "infusion_id": "Infusion id",
    "age_at_diagnosis": "Age at diagnosis (years)", "eln2022_risk": "ELN 2022 risk", "hct_ci": "HCT-CI",
    "ecog": "ECOG performance status", "hla_mismatches": "HLA mismatches", "hla_out_of": "HLA loci typed",
    "cmv": "CMV serostatus", "abo": "ABO blood group", "age": "Age (years)", "mnc_per_kg": "MNC per kg",
    "cd34_per_kg": "CD34+ per kg", "cd3_per_kg": "CD3+ per kg", "nk_per_kg": "NK cells per kg",
    "soc": "System organ class", "term": "Term (CTCAE)", "grade": "Grade (CTCAE 1–5)", "lod": "Limit of detection",
    "below_lod": "Below the limit of detection", "above_lod": "Above the limit of detection",
    "transfused": "After a transfusion", "last_contact_date": "Last contact (known alive)",
    "last_disease_assessment": "Last disease assessment", "value_text": "Value", "study_day": "Study day",
    "per_kg": "Dose per kg", "dose_level": "Dose level", "start_date": "Start date", "end_date": "End date",
    "birth_date": "Birth date", "diagnosis_date": "Diagnosis date", "item": "Item", "agent": "Agent",
    "date": "Date", "donor_id_ref": "Donor",
}  # fmt: skip
# seldom-needed columns, folded under "More fields" (opened when one holds a value or an error)
MORE = {"observations": ("study_day", "visit", "specimen", "method", "lod", "below_lod", "above_lod"),
        "assessments": ("study_day", "visit"), "interventions": ("dose_level", "visit", "course_id")}  # fmt: skip
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}\Z")  # ids typed in a form (they go into page addresses)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
TEXT_MAX, NOTE_MAX = 200, 5000  # the store's text columns are VARCHAR(200); notes are TEXT
YES = {"yes": True, "y": True, "true": True, "1": True, "on": True, "no": False, "n": False, "false": False, "0": False}


@dataclass(frozen=True)
class Field:
    """One input of a form. ``input``: text, textarea, number, date or select; ``options`` the (value, label)
    pairs of a select (a blank first option unless required), ``groups`` optgroups of (label, options);
    ``low``/``high``/``step`` a number's ``min``/``max``/``step``; ``note`` what the field takes (unit, range,
    type); ``readonly`` a value shown but not changed (an identifier when editing)."""

    name: str
    label: str
    input: str = "text"
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    low: float | None = None
    high: float | None = None
    step: str | None = None
    note: str = ""
    readonly: bool = False
    maxlength: int | None = None
    refresh: bool = False  # choosing another value re-renders the form (the item select)
    more: bool = False  # seldom needed: shown folded under "More fields"


def label_of(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").capitalize())


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _range_note(low: float | date | None, high: float | date | None, unit: str | None = None) -> str:
    unit_text = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low:g}–{high:g}{unit_text}" if isinstance(low, float | int) else f"{low} to {high}"
    if low is not None:
        return f"≥ {low:g}{unit_text}" if isinstance(low, float | int) else f"from {low}"
    if high is not None:
        return f"≤ {high:g}{unit_text}" if isinstance(high, float | int) else f"until {high}"
    return unit_text.strip()


def item_groups(table: str, dictionary: DataDictionary, group: str | None = None
                ) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:  # fmt: skip
    """The dictionary's items of the table's kind as (form, ((code, "label (unit)"), ...)) groups in dictionary
    order; only the form ``group`` when given (and it has items)."""
    items = [i for i in dictionary.of_kind(KIND_OF_TABLE[table]) if group is None or i.form == group]
    if not items and group is not None:
        items = list(dictionary.of_kind(KIND_OF_TABLE[table]))
    groups: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        shown = item.label or item.code
        groups.setdefault((item.form or "other").replace("_", " "), []).append(
            (item.code, f"{shown} ({item.unit})" if item.unit else shown))
    return tuple((name, tuple(options)) for name, options in groups.items())


def chosen_item(table: str, dictionary: DataDictionary, code: str | None,
                group: str | None = None) -> Item | None:  # fmt: skip
    """The item a dictionary-table form is for: ``code`` when the dictionary has it as an item of the table's kind,
    else the first item offered (None for other tables or an empty dictionary)."""
    if table not in DICTIONARY_TABLES:
        return None
    if code and code in dictionary and dictionary.item(code).kind == KIND_OF_TABLE[table]:
        return dictionary.item(code)
    groups = item_groups(table, dictionary, group)
    return dictionary.item(groups[0][1][0][0]) if groups else None


def value_column(table: str, item: Item) -> str:
    """The column an item's value goes into: ``dose`` for an intervention, ``value`` for a number, ``value_text``
    for a choice, yes/no, date or text item (a yes/no is stored as ``value`` 1/0 by the store's validation)."""
    if table == "interventions":
        return "dose"
    return "value" if item.type in ("number", "integer") else "value_text"


def _item_field(table: str, item: Item) -> Field:
    """The value field of a dictionary item: its type, unit, range and choices."""
    name = value_column(table, item)
    label = "Dose" if table == "interventions" else "Value"
    if item.type in ("number", "integer"):
        low = float(item.low) if isinstance(item.low, int | float) else (0.0 if table == "interventions" else None)
        high = float(item.high) if isinstance(item.high, int | float) else None
        kind = "whole number" if item.type == "integer" else "number"
        allowed = _range_note(low, high, item.unit)
        note = f"{kind} in {item.unit}" if item.unit else kind
        note += f", allowed {allowed}" if (low is not None or high is not None) else ""
        return Field(name, f"{label} ({item.unit})" if item.unit else label, "number",
                     required=table in ("assessments", "attributes"), low=low, high=high,
                     step="1" if item.type == "integer" else "any", note=note)  # fmt: skip
    if item.type == "choice":
        options = tuple((c.code, c.label if c.label == c.code else f"{c.label} ({c.code})") for c in item.choices)
        return Field(name, label, "select", required=True, options=options,
                     note=f"one of {len(options)} choices")  # fmt: skip
    if item.type == "yesno":
        return Field(name, label, "select", required=True, options=(("1", item.choice_label("1")),
                                                                    ("0", item.choice_label("0"))), note="yes or no")
    if item.type == "date":
        return Field(name, label, "date", required=True, note="a date" + (f", {_range_note(item.low, item.high)}"
                                                                          if item.low or item.high else ""))
    return Field(name, label, "text", required=True, maxlength=TEXT_MAX, note="text")


def _column_field(table: str, col: Column, references: Mapping[str, Sequence[tuple[str, str]]],
                  editing: bool) -> Field:  # fmt: skip
    label = label_of(col.name)
    if col.references and col.references != "patients.patient_id":
        ref_table = col.references.split(".")[0]
        options = tuple(references.get(ref_table, ()))
        return Field(col.name, label.replace(" id", ""), "select", col.required, options,
                     note="" if options else f"no {ref_table} recorded for this patient yet")  # fmt: skip
    if col.kind == "id":
        return Field(col.name, label, "text", col.required, readonly=editing, maxlength=50,
                     note="letters, digits, '-', '_' or '.'; not changed later" if not editing else "")
    if col.kind in ("number", "integer"):
        return Field(col.name, label, "number", col.required, low=col.low, high=col.high,
                     step="1" if col.kind == "integer" else "any",
                     note=_range_note(col.low, col.high) if col.low is not None or col.high is not None else "")
    if col.kind == "choice":
        return Field(col.name, label, "select", col.required, tuple((c, c) for c in col.choices))
    if col.kind == "bool":
        return Field(col.name, label, "select", col.required, (("yes", "yes"), ("no", "no")))
    if col.kind == "date":
        return Field(col.name, label, "date", col.required)
    if col.kind == "note":
        return Field(col.name, label, "textarea", col.required, maxlength=NOTE_MAX)
    return Field(col.name, label, "text", col.required, maxlength=TEXT_MAX)


def form_fields(table: str, dictionary: DataDictionary, item: Item | None = None,
                references: Mapping[str, Sequence[tuple[str, str]]] | None = None, editing: bool = False,
                group: str | None = None) -> list[Field]:  # fmt: skip
    """The fields of a table's form (without ``patient_id``, which the page's address gives): the item select and
    its value field first for a dictionary table (``item``: the one chosen), then the other columns in schema
    order. ``references``: per referenced table (donors, courses), the patient's (id, label) pairs."""
    spec = TABLES[table]
    refs = references or {}
    fields: list[Field] = []
    left_out = set(LEFT_OUT.get(table, ())) | ({"patient_id"} if table != "patients" else set())
    code_column = DICTIONARY_TABLES.get(table)
    if code_column is not None:
        left_out |= {code_column, "value", "value_text"} | ({"dose"} if table == "interventions" else set())
        fields.append(Field(code_column, label_of(code_column), "select", True,
                            groups=item_groups(table, dictionary, group), refresh=True,
                            note=_item_note(item) if item is not None else "no items of this kind in the dictionary"))
        day = next((c for c in ("date", "start_date") if c in {x.name for x in spec.columns}), None)
        if day is not None:  # the item, its date, then its value
            fields.append(_column_field(table, spec.column(day), refs, False))
            left_out.add(day)
        if item is not None:
            fields.append(_item_field(table, item))
    for col in spec.columns:
        if col.name in left_out:
            continue
        field = _column_field(table, col, refs, editing and col.name == spec.key)
        if col.name == "unit" and item is not None and item.unit:
            field = Field("unit", "Unit", "text", maxlength=TEXT_MAX,
                          note=f"blank = {item.unit}; another unit is converted to {item.unit}")
        fields.append(replace(field, more=True) if col.name in MORE.get(table, ()) else field)
    return [f for f in fields if not f.more] + [f for f in fields if f.more]


def _item_note(item: Item) -> str:
    kind = {"number": "a number", "integer": "a whole number", "choice": "a choice", "yesno": "yes/no",
            "date": "a date", "text": "text"}[item.type]  # fmt: skip
    unit = f" in {item.unit}" if item.unit else ""
    return f"{item.code}: {kind}{unit}" + (f" — {item.note}" if item.note else "")


@dataclass(frozen=True)
class Parsed:
    """Typed values of a submitted form (only the fields it has) and a problem per bad field."""

    values: dict[str, Any]
    problems: list[Problem]


def parse_form(table: str, form: Mapping[str, Any], fields: Sequence[Field],
               dictionary: DataDictionary) -> Parsed:  # fmt: skip
    """Parse the submitted text of ``fields`` (read-only ones are skipped) into typed values: dates as
    :class:`datetime.date`, numbers as float (whole numbers as int), yes/no as bool, blanks as None; for a
    dictionary table the value goes to the column its item's type needs, checked against the item's type, unit
    range and choices."""
    spec = TABLES[table]
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    code_column = DICTIONARY_TABLES.get(table)
    item: Item | None = None
    for field in fields:
        if field.readonly:
            continue
        raw = form.get(field.name)
        text = "" if raw is None else str(raw).strip()
        if field.name == code_column:
            item = _parse_item(table, text, dictionary, problems)
            values[field.name] = text or None
            continue
        if code_column is not None and field.name in ("value", "value_text", "dose"):
            continue  # the item's value: parsed below, once the item is known
        col = spec.column(field.name)
        value, rule = _parse_column(col, text, field.options if col.references else ())
        if rule is not None:
            problems.append(Problem(table, None, col.name, None if col.kind == "id" else text or None,
                                    f"{col.name}: {rule}"))  # fmt: skip
        values[col.name] = value
    if code_column is not None and item is not None:
        _parse_item_value(table, item, form, values, problems)
    return Parsed(values, problems)


def _parse_item(table: str, code: str, dictionary: DataDictionary, problems: list[Problem]) -> Item | None:
    column = DICTIONARY_TABLES[table]
    if not code:
        problems.append(Problem(table, None, column, None, f"{column}: choose an item"))
        return None
    if code not in dictionary or dictionary.item(code).kind != KIND_OF_TABLE[table]:
        problems.append(Problem(table, None, column, code, f"{column}: '{code}' is not {KIND_OF_TABLE[table]} item "
                                "of the data dictionary"))  # fmt: skip
        return None
    return dictionary.item(code)


def _parse_item_value(table: str, item: Item, form: Mapping[str, Any], values: dict[str, Any],
                      problems: list[Problem]) -> None:  # fmt: skip
    target = value_column(table, item)
    names = {x.name for x in TABLES[table].columns}
    others = [c for c in ("value", "value_text", "dose") if c != target and c in names]
    raw = str(form.get(target) or "").strip()
    if not raw:  # sent under another name (the item was changed without the page re-rendering its value field)
        raw = next((str(form[c]).strip() for c in others if str(form.get(c) or "").strip()), "")
    for column in others:
        values[column] = None
    field = _item_field(table, item)
    if not raw:
        values[target] = None
        if field.required:
            problems.append(Problem(table, None, target, None, f"{target}: a value is required for '{item.code}'"))
        return
    if item.type in ("number", "integer"):
        number, rule = _number(raw, item.type == "integer")
        unit = str(form.get("unit") or "").strip()
        if rule is None and (not unit or unit == item.unit):  # another unit: the store converts, then checks
            rule = _out_of_range(number, field.low, field.high, item.unit)
        if rule is not None:
            problems.append(Problem(table, None, target, raw, f"{target}: {rule}"))
            number = None
        values[target] = number
    elif item.type in ("choice", "yesno"):
        codes = [code for code, _ in field.options]
        if raw not in codes:
            problems.append(Problem(table, None, target, raw, f"{target}: '{raw}' is not one of the choices of "
                                    f"'{item.code}' ({', '.join(codes)})"))  # fmt: skip
        values[target] = raw if raw in codes else None
    elif item.type == "date":
        day, rule = _date(raw)
        if rule is not None:
            problems.append(Problem(table, None, target, raw, f"{target}: {rule}"))
        values[target] = day.isoformat() if day is not None else None
    else:
        if len(raw) > TEXT_MAX:
            problems.append(Problem(table, None, target, None, f"{target}: longer than {TEXT_MAX} characters"))
        values[target] = raw[:TEXT_MAX]


def _number(raw: str, whole: bool) -> tuple[Any, str | None]:
    try:
        number = float(raw)
    except ValueError:
        hint = " (use a decimal point, not a comma)" if re.fullmatch(r"-?\d+,\d+", raw) else ""
        return None, f"'{raw[:40]}' is not a number{hint}"
    if not math.isfinite(number):
        return None, f"'{raw[:40]}' is not a number"
    if whole:
        if number != math.floor(number):
            return None, f"{number:g} is not a whole number"
        return int(number), None
    return number, None


def _out_of_range(number: float, low: float | None, high: float | None, unit: str | None = None) -> str | None:
    unit_text = f" {unit}" if unit else ""
    if low is not None and number < low:
        return f"{number:g} is below the lowest allowed value {low:g}{unit_text}"
    if high is not None and number > high:
        return f"{number:g} is above the highest allowed value {high:g}{unit_text}"
    return None


def _date(raw: str) -> tuple[date | None, str | None]:
    if ISO_DATE.match(raw):
        try:
            return date.fromisoformat(raw), None
        except ValueError:
            pass
    return None, f"'{raw[:40]}' is not a date (YYYY-MM-DD)"


def _parse_column(col: Column, text: str, options: Sequence[tuple[str, str]]) -> tuple[Any, str | None]:
    """One column's typed value from its text, or None and the broken rule."""
    if not text:
        return None, "a value is required" if col.required else None
    if col.references and col.references != "patients.patient_id":
        if text not in {value for value, _ in options}:
            return None, f"not a {col.references.split('.')[0][:-1]} of this patient"
        return text, None
    if col.kind == "id":
        if not ID_PATTERN.match(text):
            return None, "use letters, digits, '-', '_' or '.' (at most 50, starting with a letter or digit)"
        if text.lower() == "new":
            return None, "'new' is not an id (it names the page of a new patient)"
        return text, None
    if col.kind in ("number", "integer"):
        number, rule = _number(text, col.kind == "integer")
        if rule is None:
            rule = _out_of_range(number, col.low, col.high)
        return (None, rule) if rule is not None else (number, None)
    if col.kind == "date":
        return _date(text)
    if col.kind == "bool":
        if text.lower() not in YES:
            return None, f"'{text[:40]}' is not yes or no"
        return YES[text.lower()], None
    if col.kind == "choice":
        if text not in col.choices:
            return None, f"'{text[:40]}' is not one of {', '.join(col.choices)}"
        return text, None
    limit = NOTE_MAX if col.kind == "note" else TEXT_MAX
    if len(text) > limit:
        return None, f"longer than {limit} characters"
    return text, None


# what to do about another record's problem that a new or changed record causes
HINTS = {("follow_up", "last contact before the patient's latest dated record"):
         "The patient's last contact ({value}, follow-up) is before this record: update the follow-up first (edit "
         "follow-up, on the patient's page)."}  # fmt: skip


def field_errors(problems: Sequence[Problem], fields: Sequence[Field]) -> dict[str, list[str]]:
    """Messages per field name (``""``: about the form as a whole, e.g. another record's chronology, a duplicate
    record, a locked study). A problem of the store's validation reads ``"<column>: <value> — <rule>"``."""
    names = {f.name for f in fields} | {"reason", "centre"}
    out: dict[str, list[str]] = {}
    for p in problems:
        mine = p.column in names and p.row is None
        hint = HINTS.get((p.table, p.rule))
        text = message(p) if mine else hint.format(value=p.value) if hint else str(p)
        out.setdefault(p.column if mine and p.column else "", []).append(text)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def message(p: Problem) -> str:
    """A field's problem in words: our own rules already start with the column; the store's get it prefixed."""
    if p.column and p.rule.startswith(f"{p.column}: "):
        return p.rule
    value = p.value.item() if hasattr(p.value, "item") else p.value
    if isinstance(value, float):
        value = f"{value:g}"
    return f"{p.column}: {value} — {p.rule}" if value not in (None, "") else f"{p.column}: {p.rule}"


def form_values(row: Mapping[str, Any], table: str, dictionary: DataDictionary) -> dict[str, str]:
    """A stored record as the text its form shows (dates ISO, numbers without a trailing .0, yes/no, a yes/no
    item's 1/0 in ``value_text``)."""
    out: dict[str, str] = {}
    for col in TABLES[table].columns:
        value = row.get(col.name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if col.kind == "bool":
            out[col.name] = "yes" if value else "no"
        elif isinstance(value, float):
            out[col.name] = f"{value:g}" if abs(value) < 1e15 else repr(value)
        elif isinstance(value, date):
            out[col.name] = value.isoformat()[:10]
        else:
            out[col.name] = str(value)
    code_column = DICTIONARY_TABLES.get(table)
    code = out.get(code_column or "")
    if code and code in dictionary and dictionary.item(code).type == "yesno" and "value" in out:
        out["value_text"] = "1" if float(out["value"]) else "0"
    return out


def references(records: Mapping[str, pd.DataFrame]) -> dict[str, list[tuple[str, str]]]:
    """The patient's donors and courses as (id, label) options for reference selects."""
    donors = records["donors"]
    courses = records["courses"]
    out: dict[str, list[tuple[str, str]]] = {"donors": [], "courses": []}
    for donor_id, relation in zip(donors["donor_id"].tolist(), donors["relation"].tolist(), strict=True):
        shown = f"{donor_id} ({relation})" if isinstance(relation, str) else str(donor_id)
        out["donors"].append((str(donor_id), shown))
    for course_id, number, kind, start in zip(courses["course_id"].tolist(), courses["number"].tolist(),
                                              courses["kind"].tolist(), courses["start_date"].tolist(), strict=True):
        day = str(start)[:10] if start is not None and str(start) != "NaT" else ""
        what = f"{kind} {int(number)}" if isinstance(kind, str) and number == number else ""
        out["courses"].append((str(course_id), f"{course_id} ({what}, {day})" if what else str(course_id)))
    return out
