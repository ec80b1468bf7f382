"""REDCap's data-dictionary CSV in and out of a :class:`~allotrack.records.dictionary.DataDictionary`.

REDCap's data dictionary has one row per field and 18 columns (``Variable / Field Name``, ``Form Name``, ...,
``Field Annotation``; see :data:`~allotrack.records.dictionary.REDCAP_COLUMNS`). Mapping:

* number: field type ``text`` with validation ``number`` (``number_1dp``, ``number_comma_decimal``, ... kept);
  integer: ``text`` + ``integer``; date: ``text`` + ``date_ymd`` (``date_dmy`` / ``date_mdy`` kept); text: ``text``
  without validation, or ``notes``, or ``text`` with another validation (``email``, ``datetime_ymd``, ... kept);
  choice: ``dropdown`` (default) or ``radio``, choices ``1, Male | 2, Female``; yesno: ``yesno`` or ``truefalse``.
  Field types allotrack does not model (checkbox, calc, file, descriptive, slider, sql) are refused, all at once.
* ``Text Validation Min/Max`` <-> ``low``/``high`` (numbers; ISO dates for date items; values such as ``today``
  are kept verbatim); ``Required Field?`` ``y`` <-> ``required``; branching logic <-> ``condition`` (verbatim).
* allotrack's own fields go into the ``Field Annotation`` as action-tag-like tags, written after the field's other
  annotation text and parsed back from it: ``@ALLOTRACK-KIND=observation @ALLOTRACK-UNIT="10*9/L"
  @ALLOTRACK-PLAUSIBLE="0,100" @ALLOTRACK-MOLAR-MASS=584.66`` (quoted values escape ``"`` and ``\\`` with ``\\``).
  A field without a KIND tag gets ``default_kind`` (``"attribute"``); the record-id field is always written
  without one when it is an attribute.
* The first field of a REDCap dictionary is the project's record id: it is read as an item flagged
  ``redcap["Record ID"] = "y"`` and written first. A dictionary without such an item is written with an added
  first field ``record_id`` tagged ``@ALLOTRACK-RECORD-ID`` (it also carries ``@ALLOTRACK-DICTIONARY="name"`` and
  ``@ALLOTRACK-VERSION="v"``); reading drops that field again, so dictionary -> CSV -> dictionary is exact.
* REDCap needs each instrument's fields together: items are written grouped by form, forms in order of first
  appearance (the record id's form first); an item without a form is written on the form named by its kind.
* Everything else REDCap holds (section header, identifier flag, alignment, question number, matrix group and
  ranking, other annotation text, a radio / notes / truefalse field type, a validation type detail, a cell
  written differently from allotrack's own spelling such as ``0.50``) is kept in ``Item.redcap``.

Spreadsheet safety (OWASP CSV injection, as :mod:`allotrack.records.safe_csv`): a cell that begins with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading ``'`` and the quote is removed
again on reading (a cell beginning with quotes and such a character gets one more quote). REDCap syntax is the
exception: ``@`` starts action tags in the Field Annotation and ``-`` starts negative choice codes and negative
minima / maxima, so those cells keep those characters; a ``'`` there would reach REDCap and corrupt them.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Any, cast

from allotrack.errors import InputError
from allotrack.records.dictionary import (
    ANNOTATION,
    CHOICES,
    DATE_VALIDATIONS,
    FIELD_TYPE,
    KINDS,
    NUMBER_VALIDATIONS,
    RECORD_ID_FLAG,
    REDCAP_COLUMNS,
    VALIDATION,
    Choice,
    DataDictionary,
    Item,
    ItemProblems,
    ItemType,
    Kind,
)
from allotrack.records.safe_csv import FORMULA_PREFIXES

__all__ = ["from_redcap_csv", "to_redcap_csv"]

(NAME, FORM, SECTION, _TYPE, LABEL, _CHOICES, NOTE, _VALID, MIN, MAX, IDENTIFIER, LOGIC, REQUIRED, ALIGN, QNUMBER,
 MATRIX, RANKING, _ANNOT) = REDCAP_COLUMNS  # fmt: skip
SUPPORTED = ("text", "notes", "dropdown", "radio", "yesno", "truefalse")
_KEPT = (SECTION, IDENTIFIER, ALIGN, QNUMBER, MATRIX, RANKING)  # columns only ever kept verbatim
_ALLOWED_START = {CHOICES: "-", MIN: "-", MAX: "-", ANNOTATION: "@"}  # REDCap syntax that a quote would break
_TAG = re.compile(r'(?:^|\s+)@ALLOTRACK-([A-Z0-9-]*[A-Z0-9])(?:=("(?:[^"\\]|\\.)*"|[^\s"]+))?(?=\s|$)')
_TAGS = ("RECORD-ID", "DICTIONARY", "VERSION", "KIND", "UNIT", "PLAUSIBLE", "MOLAR-MASS")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


# --- cells ----------------------------------------------------------------------------------------------------

def _prefixes(column: str) -> tuple[str, ...]:
    return tuple(p for p in FORMULA_PREFIXES if p not in _ALLOWED_START.get(column, ""))


def _safe(column: str, text: str) -> str:
    return "'" + text if text.lstrip("'").startswith(_prefixes(column)) else text


def _unsafe(column: str, text: str) -> str:
    return text[1:] if text.startswith("'") and text.lstrip("'").startswith(_prefixes(column)) else text


def _number(text: str) -> float | None:
    """A REDCap number cell as an int (integer spelling) or a finite float; None if it is not one."""
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    value = float(text)
    return value if abs(value) != float("inf") else None


def _bound(item_type: str, text: str) -> float | date | None:
    if item_type == "date":
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) and _valid_date(text) else None
    return _number(text) if item_type in ("number", "integer") else None


def _valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _show(value: float | date | None) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else repr(value) if isinstance(value, float) else str(value)


def _choices(text: str) -> tuple[Choice, ...] | None:
    """``1, Male | 2, Female`` as choices; None unless every part is ``code, label``."""
    out = []
    for part in text.split("|"):
        code, comma, label = part.partition(",")
        if not comma:
            return None
        out.append(Choice(code.strip(), label.strip()))
    return tuple(out)


def _required(text: str) -> bool | None:
    return {"y": True, "": False, "n": False}.get(text.strip().lower())


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1]) if text.startswith('"') else text


# --- writing --------------------------------------------------------------------------------------------------

def to_redcap_csv(dictionary: DataDictionary) -> str:
    """REDCap's data-dictionary CSV of ``dictionary`` (RFC 4180: CRLF line ends, minimal quoting)."""
    items = list(dictionary.items)
    record_id = next((i for i in items if (RECORD_ID_FLAG, "y") in i.redcap), None)
    if record_id is not None:
        items.remove(record_id)
        items.insert(0, record_id)
    forms: dict[str, list[Item]] = {}
    for item in items:
        forms.setdefault(item.form or item.kind, []).append(item)
    ordered = [item for group in forms.values() for item in group]
    dict_tags = [f"@ALLOTRACK-DICTIONARY={_quote(dictionary.name)}"] if dictionary.name else []
    dict_tags += [f"@ALLOTRACK-VERSION={_quote(dictionary.version)}"] if dictionary.version else []
    rows = []
    if record_id is None:
        name = next(n for n in ("record_id", *(f"record_id_{k}" for k in range(1, len(items) + 2)))
                    if n not in dictionary)  # fmt: skip
        form = next(iter(forms), "allotrack")
        annotation = " ".join(["@ALLOTRACK-RECORD-ID", *dict_tags])
        rows.append([name, form, "", "text", "Record ID", *[""] * 12, annotation])
        dict_tags = []
    for n, item in enumerate(ordered):
        rows.append(_row(item, dict_tags if n == 0 else []))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REDCAP_COLUMNS)
    writer.writerows([_safe(col, cell) for col, cell in zip(REDCAP_COLUMNS, row, strict=True)] for row in rows)
    return out.getvalue()


def _row(item: Item, dict_tags: list[str]) -> list[str]:
    extras = item.extras
    typed = {"number": "number", "integer": "integer", "date": "date_ymd"}
    default_validation = typed.get(item.type, "")
    cells = {col: extras.get(col, "") for col in _KEPT}
    cells |= {
        NAME: item.code, FORM: item.form or item.kind, FIELD_TYPE: extras.get(FIELD_TYPE, _default_type(item)),
        LABEL: item.label, NOTE: item.note, VALIDATION: extras.get(VALIDATION, default_validation),
        LOGIC: item.condition or "",
    }  # fmt: skip
    if item.type == "choice":
        canonical = " | ".join(f"{c.code}, {c.label}" for c in item.choices)
        cells[CHOICES] = _kept(extras.get(CHOICES), canonical, lambda t: _choices(t) == item.choices)
    else:
        cells[CHOICES] = extras.get(CHOICES, "")
    for column, value in ((MIN, item.low), (MAX, item.high)):
        if item.type in typed:
            cells[column] = _kept(extras.get(column), _show(value), lambda t, v=value: _bound(item.type, t) == v)
        else:
            cells[column] = extras.get(column, "")
    cells[REQUIRED] = _kept(extras.get(REQUIRED), "y" if item.required else "", lambda t: _required(t) is item.required)
    cells[ANNOTATION] = " ".join(filter(None, [extras.get(ANNOTATION, ""), *dict_tags, *_tags(item)]))
    return [cells[col] for col in REDCAP_COLUMNS]


def _default_type(item: Item) -> str:
    return {"choice": "dropdown", "yesno": "yesno"}.get(item.type, "text")


def _kept(verbatim: str | None, canonical: str, same: Any) -> str:
    """The cell as REDCap had it when that still means the item's value, else allotrack's spelling."""
    return verbatim if verbatim is not None and verbatim != canonical and same(verbatim) else canonical


def _tags(item: Item) -> list[str]:
    tags = []
    if not ((RECORD_ID_FLAG, "y") in item.redcap and item.kind == "attribute"):
        tags.append(f"@ALLOTRACK-KIND={item.kind}")
    if item.unit is not None:
        tags.append(f"@ALLOTRACK-UNIT={_quote(item.unit)}")
    if item.plausible_low is not None or item.plausible_high is not None:
        tags.append(f"@ALLOTRACK-PLAUSIBLE={_quote(_show(item.plausible_low) + ',' + _show(item.plausible_high))}")
    if item.molar_mass is not None:
        tags.append(f"@ALLOTRACK-MOLAR-MASS={_show(item.molar_mass)}")
    return tags


# --- reading --------------------------------------------------------------------------------------------------

def from_redcap_csv(text: str, source: str = "data dictionary CSV", default_kind: str = "attribute") -> DataDictionary:
    """Read REDCap's data-dictionary CSV. Every problem is reported at once, each with its CSV line and field."""
    if default_kind not in KINDS:
        raise InputError(f"unknown default kind {default_kind!r} (one of {', '.join(KINDS)})")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        columns = _columns(header, source)
        rows = []
        start = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{source}, line {reader.line_num}: not a readable CSV file: {exc}") from None
    problems: list[str] = []
    items: list[Item] = []
    meta: dict[str, str] = {}
    seen: dict[str, int] = {}
    for n, (line, row) in enumerate(rows):
        if len(row) > len(columns):
            problems.append(f"line {line}: {len(row)} cells, but the header has {len(columns)} columns")
            continue
        cells = {col: _unsafe(col, cell) for col, cell in zip(columns, row, strict=False)}
        cells = {col: cells.get(col, "") for col in REDCAP_COLUMNS}
        code = cells[NAME]
        where = f"line {line}, field {code!r}"
        if code in seen:
            problems.append(f"{where}: the field is defined again (first on line {seen[code]})")
            continue
        seen[code] = line
        found = _read_row(cells, first=n == 0, default_kind=default_kind, meta=meta)
        if isinstance(found, Item):
            items.append(found)
        else:
            problems += [f"{where}: {message}" for message in found]
    if problems:
        raise InputError(f"{source}: {len(problems)} problem(s) in the REDCap data dictionary:\n  "
                         + "\n  ".join(problems))  # fmt: skip
    return DataDictionary(tuple(items), meta.get("DICTIONARY", ""), meta.get("VERSION", ""))


def _columns(header: list[str] | None, source: str) -> list[str]:
    if not header:
        raise InputError(f"{source}: empty file; a REDCap data dictionary starts with its header row")
    columns = [c.strip() for c in header]
    # REDCap before 6.x had no Matrix Ranking? and Field Annotation columns: a shorter header is read as such
    if columns != list(REDCAP_COLUMNS[: len(columns)]) or len(columns) < 16:
        wrong = [f"column {k + 1} is {got!r}, expected {want!r}" for k, (got, want)
                 in enumerate(zip(columns, REDCAP_COLUMNS, strict=False)) if got != want][:3]  # fmt: skip
        if len(columns) > len(REDCAP_COLUMNS):
            wrong.append(f"{len(columns)} columns, REDCap has {len(REDCAP_COLUMNS)}")
        elif len(columns) < 16:
            wrong.append(f"only {len(columns)} columns")
        raise InputError(f"{source}, line 1: not a REDCap data dictionary header ({'; '.join(wrong)}); the columns "
                         f"are: {', '.join(REDCAP_COLUMNS)}")  # fmt: skip
    return columns


def _read_row(cells: dict[str, str], *, first: bool, default_kind: str, meta: dict[str, str]) -> Item | list[str]:
    """The item of one row, or its problems. The added record-id row gives ``meta`` and an empty list."""
    problems: list[str] = []
    tags, other = _read_tags(cells[ANNOTATION], problems)
    if not first and {"RECORD-ID", "DICTIONARY", "VERSION"} & tags.keys():
        problems.append("@ALLOTRACK-RECORD-ID, -DICTIONARY and -VERSION belong on the first field only")
    meta.update({k: v for k, v in tags.items() if k in ("DICTIONARY", "VERSION")})
    if "RECORD-ID" in tags and first:
        return problems
    ftype, validation = cells[FIELD_TYPE].strip().lower(), cells[VALIDATION].strip()
    if ftype not in SUPPORTED:
        return [f"field type {cells[FIELD_TYPE]!r} is not supported (allotrack reads {', '.join(SUPPORTED)}; "
                "checkbox, calc, file, descriptive, slider and sql fields are not)"]  # fmt: skip
    item_type = _item_type(ftype, validation)
    extras: dict[str, str] = {col: cells[col] for col in _KEPT if cells[col]}
    if first:
        extras[RECORD_ID_FLAG] = "y"
    if ftype != {"choice": "dropdown", "yesno": "yesno"}.get(item_type, "text"):
        extras[FIELD_TYPE] = ftype
    if validation and validation != {"number": "number", "integer": "integer", "date": "date_ymd"}.get(item_type):
        extras[VALIDATION] = validation
    if other:
        extras[ANNOTATION] = other
    kwargs: dict[str, Any] = {"choices": ()}
    if item_type == "choice":
        kwargs["choices"] = _choices(cells[CHOICES]) or ()
        if not kwargs["choices"]:
            problems.append(f"choices {cells[CHOICES]!r} are not 'code, label | code, label'")
        elif cells[CHOICES] != " | ".join(f"{c.code}, {c.label}" for c in kwargs["choices"]):
            extras[CHOICES] = cells[CHOICES]
    elif cells[CHOICES]:
        extras[CHOICES] = cells[CHOICES]
    for column, key in ((MIN, "low"), (MAX, "high")):
        value = _bound(item_type, cells[column])
        kwargs[key] = value
        if cells[column] and cells[column] != _show(value):
            extras[column] = cells[column]
    required = _required(cells[REQUIRED])
    if required is None:
        problems.append(f"Required Field? is {cells[REQUIRED]!r}: 'y' or empty")
    elif cells[REQUIRED] != ("y" if required else ""):
        extras[REQUIRED] = cells[REQUIRED]
    plausible = tags.get("PLAUSIBLE")
    if plausible is not None:
        low, comma, high = plausible.partition(",")
        bounds = [_bound(item_type, t.strip()) for t in (low, high)]
        if not comma or any(b is None and t.strip() for b, t in zip(bounds, (low, high), strict=True)):
            problems.append(f"@ALLOTRACK-PLAUSIBLE {plausible!r} is not 'low,high' ({item_type} values, one may be "
                            "empty)")  # fmt: skip
        kwargs["plausible_low"], kwargs["plausible_high"] = bounds
    if "MOLAR-MASS" in tags:
        kwargs["molar_mass"] = _number(tags["MOLAR-MASS"])
        if kwargs["molar_mass"] is None:
            problems.append(f"@ALLOTRACK-MOLAR-MASS {tags['MOLAR-MASS']!r} is not a number")
    kind = tags.get("KIND", "attribute" if first else default_kind)
    if problems:
        return problems
    try:
        return Item(cells[NAME], cells[LABEL], cast(ItemType, item_type), cast(Kind, kind), unit=tags.get("UNIT"),
                    required=bool(required),
                    condition=cells[LOGIC] or None, form=cells[FORM] or None, note=cells[NOTE],
                    redcap=tuple(extras.items()), **kwargs)  # fmt: skip
    except ItemProblems as exc:
        return [f"{key}: {message}" for key, message in exc.problems]


def _item_type(ftype: str, validation: str) -> str:
    if ftype in ("dropdown", "radio"):
        return "choice"
    if ftype in ("yesno", "truefalse"):
        return "yesno"
    if ftype == "text" and validation in NUMBER_VALIDATIONS:
        return "number"
    if ftype == "text" and validation == "integer":
        return "integer"
    return "date" if ftype == "text" and validation in DATE_VALIDATIONS else "text"


def _read_tags(annotation: str, problems: list[str]) -> tuple[dict[str, str], str]:
    """allotrack's tags of a Field Annotation (name -> unquoted value) and the rest of its text."""
    tags: dict[str, str] = {}
    for match in _TAG.finditer(annotation):
        name, value = match.group(1), match.group(2)
        if name not in _TAGS:
            problems.append(f"unknown tag @ALLOTRACK-{name} (known: {', '.join('@ALLOTRACK-' + t for t in _TAGS)})")
        elif name in tags:
            problems.append(f"@ALLOTRACK-{name} is given twice")
        elif (value is None) != (name == "RECORD-ID") or value == '""':
            problems.append(f"@ALLOTRACK-{name} " + ("takes no value" if name == "RECORD-ID" else "needs a value"))
        else:
            tags[name] = _unquote(value) if value is not None else ""
    if "KIND" in tags and tags["KIND"] not in KINDS:
        problems.append(f"@ALLOTRACK-KIND {tags['KIND']!r} is not a kind (one of {', '.join(KINDS)})")
    if not tags and "@ALLOTRACK-" not in annotation:
        return tags, annotation
    other = _TAG.sub("", annotation).strip()
    if "@ALLOTRACK-" in other:
        problems.append(f"malformed @ALLOTRACK- tag in the Field Annotation {annotation!r}")
    return tags, other
