"""A study's data dictionary: what the study measures or records, item by item, and its TOML form.

The record schema is a small typed core (patients, donors, courses, infusions, ...) plus a study's own data
dictionary, in the manner of REDCap's data dictionary (one row per field: variable name, instrument, field type,
label, choices, validation type with min/max, required flag, branching logic, field note, field annotation) and
of the CDISC SDTM general observation classes (findings, interventions, events). Each :class:`Item` says what one
value is (``type``), which kind of record carries it (``kind``: SDTM findings are ``"observation"``, SDTM
interventions ``"intervention"``, graded assessments and responses ``"assessment"``, patient-level facts
``"attribute"``, study-design records ``"design"``), the UCUM code of the unit it is stored in, its allowed range
(outside is an error) and plausible range (outside is a warning).

Values are never converted here: ``unit`` is only the unit values are stored in (the units helper converts), and
``molar_mass`` (g/mol) lets it convert between mass and substance concentrations (mg/dL <-> umol/L).

TOML form, one table per item (keys that hold their default are left out, except label, type and kind)::

    name = "allotrack default"
    version = "1"

    [items.anc]
    label = "Absolute neutrophil count"
    type = "number"
    kind = "observation"
    unit = "10*9/L"
    low = 0
    high = 1000
    plausible_high = 100

    [items.sex_pair]
    label = "Donor-recipient sex pair"
    type = "choice"
    kind = "attribute"
    choices = [["FM", "female donor to male recipient"], ["MF", "male donor to female recipient"]]

    [items.sex_pair.redcap]         # REDCap columns allotrack does not model, kept for an exact round trip
    "Field Type" = "radio"

Item keys default to: label ``""``, type ``"text"``, kind ``"attribute"``, required ``false``, no unit, range,
choices, condition, molar mass or form, note ``""``. Dates (allowed range of a date item) are TOML dates.

REDCap's data-dictionary CSV is read and written by :mod:`allotrack.records.dictionary_redcap`
(:meth:`DataDictionary.to_redcap_csv` / :meth:`DataDictionary.from_redcap_csv`).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args

from allotrack.errors import InputError

__all__ = ["KINDS", "RECORD_ID_FLAG", "REDCAP_COLUMNS", "TYPES", "Choice", "DataDictionary", "Item", "ItemProblems",
           "ItemType", "Kind", "default_dictionary"]  # fmt: skip

ItemType = Literal["number", "integer", "text", "date", "choice", "yesno"]
Kind = Literal["observation", "intervention", "assessment", "attribute", "design"]
TYPES: tuple[str, ...] = get_args(ItemType)
KINDS: tuple[str, ...] = get_args(Kind)

# REDCap's data dictionary columns, in REDCap's order
REDCAP_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation",
)  # fmt: skip
RECORD_ID_FLAG = "Record ID"  # Item.redcap key (value "y"): this item is the REDCap project's record id field
FIELD_TYPE, CHOICES, VALIDATION = REDCAP_COLUMNS[3], REDCAP_COLUMNS[5], REDCAP_COLUMNS[7]
ANNOTATION = REDCAP_COLUMNS[17]
# Item.redcap keys: the record-id flag, then the REDCap columns that an Item does not hold (or holds only in part),
# in REDCap's column order; code, form, label, field note and branching logic are always Item fields.
REDCAP_KEYS = (RECORD_ID_FLAG, *(c for i, c in enumerate(REDCAP_COLUMNS) if i not in (0, 1, 4, 6, 11)))
NUMBER_VALIDATIONS = ("number", "number_1dp", "number_2dp", "number_3dp", "number_4dp", "number_comma_decimal",
                      "number_1dp_comma_decimal", "number_2dp_comma_decimal", "number_3dp_comma_decimal",
                      "number_4dp_comma_decimal")  # fmt: skip
DATE_VALIDATIONS = ("date_ymd", "date_dmy", "date_mdy")
# REDCap field types an item of each type may be written as (the first is the default)
FIELD_TYPES: Mapping[str, tuple[str, ...]] = {
    "number": ("text",), "integer": ("text",), "date": ("text",), "text": ("text", "notes"),
    "choice": ("dropdown", "radio"), "yesno": ("yesno", "truefalse"),
}  # fmt: skip

CODE_RULE = "lowercase letters, digits and underscores, starting with a letter (REDCap's rule for variable names)"
_CODE = re.compile(r"[a-z][a-z0-9_]{0,99}\Z")
_FORM = re.compile(r"[a-z0-9_]{1,100}\Z")
_CHOICE_CODE = re.compile(r"-?[A-Za-z0-9_.]+\Z")
_BOUNDS = ("low", "high", "plausible_low", "plausible_high")


@dataclass(frozen=True)
class Choice:
    """One coded answer of a choice item: REDCap's ``code, label`` pair (``1, Male | 2, Female``)."""

    code: str
    label: str


@dataclass(frozen=True)
class Item:
    """One thing a study measures or records: a REDCap data-dictionary field plus what allotrack needs.

    ``code`` is the variable name (REDCap: lowercase letters, digits, underscores, starting with a letter).
    ``kind`` is the record kind carrying the values (SDTM classes: observation = findings, intervention =
    interventions; assessment = graded assessments and responses; attribute = patient-level; design = study
    design). ``unit`` is the UCUM code values are stored in (number and integer items only). ``low``/``high``
    bound the allowed values (outside is an error), ``plausible_low``/``plausible_high`` the plausible ones
    (outside is a warning); both are numbers for number and integer items and dates for date items.
    ``condition`` is REDCap branching logic, kept verbatim (e.g. ``[cd20_tested] = '1'``). ``redcap`` holds REDCap
    columns and values allotrack does not model, keyed by REDCap column name (plus ``"Record ID"`` = ``"y"`` on the
    project's record-id field), so that a REDCap dictionary round-trips exactly; it is normalised to REDCap's
    column order. Invalid items raise :class:`~allotrack.errors.InputError` naming the item and every problem.
    """

    code: str
    label: str = ""
    type: ItemType = "text"
    kind: Kind = "attribute"
    unit: str | None = None
    low: float | date | None = None
    high: float | date | None = None
    plausible_low: float | date | None = None
    plausible_high: float | date | None = None
    choices: tuple[Choice, ...] = ()
    required: bool = False
    condition: str | None = None
    molar_mass: float | None = None
    form: str | None = None
    note: str = ""
    redcap: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.choices, tuple) or not all(isinstance(c, Choice) for c in self.choices):
            object.__setattr__(self, "choices", tuple(c if isinstance(c, Choice) else Choice(*c) for c in self.choices))
        extras = self.redcap.items() if isinstance(self.redcap, Mapping) else self.redcap
        extras = tuple(tuple(pair) for pair in extras)
        order = {k: i for i, k in enumerate(REDCAP_KEYS)}
        object.__setattr__(self, "redcap", tuple(sorted(extras, key=lambda kv: (order.get(kv[0], len(order)), kv))))
        if self.condition == "":
            object.__setattr__(self, "condition", None)
        problems = _item_problems(self)
        if problems:
            raise ItemProblems(self.code, problems)

    @property
    def extras(self) -> dict[str, str]:
        """``redcap`` as a dict."""
        return dict(self.redcap)

    @property
    def choice_codes(self) -> tuple[str, ...]:
        """The coded values: the choice codes, ``("1", "0")`` for a yes/no item, ``()`` otherwise."""
        return tuple(self._choice_map())

    def choice_label(self, code: str) -> str:
        """The label of a coded value (yes/no items: ``"1"`` Yes / True, ``"0"`` No / False, as REDCap)."""
        labels = self._choice_map()
        if not labels:
            raise InputError(f"item '{self.code}' is a {self.type} item: it has no coded values")
        if code not in labels:
            raise KeyError(f"item '{self.code}' has no choice {code!r}; its codes are {', '.join(labels)}")
        return labels[code]

    def _choice_map(self) -> dict[str, str]:
        if self.type == "yesno":
            true_false = self.extras.get(FIELD_TYPE) == "truefalse"
            return {"1": "True", "0": "False"} if true_false else {"1": "Yes", "0": "No"}
        return {c.code: c.label for c in self.choices}


class ItemProblems(InputError):
    """An invalid :class:`Item`; ``problems`` lists (key, message) pairs, every one found."""

    def __init__(self, code: Any, problems: list[tuple[str, str]]) -> None:
        self.code = code
        self.problems = problems
        super().__init__(f"item {code!r}: " + "; ".join(f"{key}: {message}" for key, message in problems))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (multiprocessing, web workers)
        return (type(self), (self.code, self.problems))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bad_text(value: Any, key: str) -> str | None:
    if not isinstance(value, str):
        return f"{key} must be text, not {type(value).__name__}"
    return f"{key} must not hold a NUL character" if "\x00" in value else None


def _item_problems(item: Item) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not isinstance(item.code, str) or not _CODE.match(item.code):
        out.append(("code", f"{item.code!r} is not a valid code: {CODE_RULE}, at most 100 characters"))
    for key in ("label", "note"):
        if problem := _bad_text(getattr(item, key), key):
            out.append((key, problem))
    if item.type not in TYPES:
        out.append(("type", f"unknown type {item.type!r} (one of {', '.join(TYPES)})"))
    if item.kind not in KINDS:
        out.append(("kind", f"unknown kind {item.kind!r} (one of {', '.join(KINDS)})"))
    numeric = item.type in ("number", "integer")
    if item.unit is not None:
        if not isinstance(item.unit, str) or not item.unit or re.search(r'[\s"\\]', item.unit):
            out.append(("unit", f"{item.unit!r} is not a UCUM unit code (no spaces or quotes)"))
        elif not numeric:
            out.append(("unit", f"a {item.type} item has no unit"))
    out += _range_problems(item)
    out += _choice_problems(item)
    if not isinstance(item.required, bool):
        out.append(("required", f"must be true or false, not {item.required!r}"))
    if item.condition is not None and (problem := _bad_text(item.condition, "condition")):
        out.append(("condition", problem))
    if item.molar_mass is not None:
        if not _is_number(item.molar_mass) or item.molar_mass <= 0:
            out.append(("molar_mass", f"must be a positive number of g/mol, not {item.molar_mass!r}"))
        elif not numeric:
            out.append(("molar_mass", f"a {item.type} item has no molar mass"))
    if item.form is not None and (not isinstance(item.form, str) or not _FORM.match(item.form)):
        out.append(("form", f"{item.form!r} is not a REDCap instrument name (lowercase letters, digits, underscores)"))
    out += _redcap_problems(item)
    return out


def _range_problems(item: Item) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    values = {key: getattr(item, key) for key in _BOUNDS if getattr(item, key) is not None}
    for key, value in values.items():
        if item.type in ("number", "integer"):
            ok = _is_number(value)
        elif item.type == "date":
            ok = isinstance(value, date) and not isinstance(value, datetime)
        else:
            out.append((key, f"a {item.type} item has no range"))
            continue
        if not ok:
            want = "a date" if item.type == "date" else "a finite number"
            out.append((key, f"must be {want}, not {value!r}"))
    if out:
        return out
    for a, b in (("low", "high"), ("plausible_low", "plausible_high")):
        if a in values and b in values and values[a] > values[b]:
            out.append((a, f"{a} {values[a]!r} > {b} {values[b]!r}"))
    for key in ("plausible_low", "plausible_high"):
        if key not in values:
            continue
        if ("low" in values and values[key] < values["low"]) or ("high" in values and values[key] > values["high"]):
            out.append((key, f"{key} {values[key]!r} lies outside the allowed range [{values.get('low', '')}, "
                             f"{values.get('high', '')}]: the plausible range lies inside the allowed range"))
    return out


def _choice_problems(item: Item) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if item.type == "choice" and not item.choices:
        out.append(("choices", "a choice item needs choices, e.g. [[\"1\", \"male\"], [\"2\", \"female\"]]"))
    if item.type != "choice" and item.choices:
        out.append(("choices", f"only choice items have choices, not a {item.type} item"))
    seen: set[str] = set()
    for c in item.choices:
        if not isinstance(c.code, str) or not _CHOICE_CODE.match(c.code):
            out.append(("choices", f"choice code {c.code!r}: letters, digits, '_' or '.', an optional leading '-'"))
        elif c.code in seen:
            out.append(("choices", f"choice code {c.code!r} appears twice"))
        else:
            seen.add(c.code)
        if not isinstance(c.label, str) or not c.label or c.label != c.label.strip() or re.search(r"[|\r\n\x00]",
                                                                                                   c.label):
            out.append(("choices", f"choice {c.code!r} label {c.label!r}: not empty, no '|' or line break, "
                                   "no leading or trailing spaces"))
    return out


def _redcap_problems(item: Item) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for pair in item.redcap:
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            return [("redcap", f"{pair!r} is not a (REDCap column, value) pair of texts")]
    keys = [k for k, _ in item.redcap]
    for key, value in item.redcap:
        if key not in REDCAP_KEYS:
            close = difflib.get_close_matches(key, REDCAP_KEYS, 1)
            out.append(("redcap", f"unknown REDCap column {key!r}" + (f" (did you mean {close[0]!r}?)" if close
                                                                        else f"; known: {', '.join(REDCAP_KEYS)}")))
        elif keys.count(key) > 1:
            out.append(("redcap", f"{key!r} is given twice"))
        elif not value or "\x00" in value:
            out.append(("redcap", f"{key!r}: the value must not be empty or hold a NUL character"))
    extras = dict(item.redcap)
    if extras.get(RECORD_ID_FLAG, "y") != "y":
        out.append(("redcap", f"{RECORD_ID_FLAG!r} must be \"y\""))
    if "@ALLOTRACK-" in extras.get(ANNOTATION, ""):
        out.append(("redcap", f"{ANNOTATION!r} holds an @ALLOTRACK- tag: give kind, unit, plausible range and "
                              "molar mass as item keys"))
    if item.type not in TYPES:
        return out
    ftype = extras.get(FIELD_TYPE)
    if ftype is not None and ftype not in FIELD_TYPES[item.type]:
        out.append(("redcap", f"{FIELD_TYPE!r} {ftype!r} does not fit a {item.type} item "
                              f"({' or '.join(FIELD_TYPES[item.type])})"))
    validation = extras.get(VALIDATION)
    allowed = {"number": NUMBER_VALIDATIONS, "integer": ("integer",), "date": DATE_VALIDATIONS}.get(item.type)
    typed = (*NUMBER_VALIDATIONS, "integer", *DATE_VALIDATIONS)
    if validation is not None and (validation not in allowed if allowed is not None
                                   else item.type == "text" and validation in typed and ftype != "notes"):
        out.append(("redcap", f"{VALIDATION!r} {validation!r} does not fit a {item.type} item"))
    return out


@dataclass(frozen=True)
class DataDictionary:
    """A study's data dictionary: its items in order (codes unique), with a name and a version."""

    items: tuple[Item, ...]
    name: str = ""
    version: str = ""
    _index: dict[str, Item] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))
        problems = [f"{x!r} is not an Item" for x in self.items if not isinstance(x, Item)]
        for key in ("name", "version"):
            if problem := _bad_text(getattr(self, key), key):
                problems.append(problem)
        codes = [i.code for i in self.items if isinstance(i, Item)]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            problems.append(f"codes appear more than once: {', '.join(twice)}")
        ids = [i.code for i in self.items if isinstance(i, Item) and (RECORD_ID_FLAG, "y") in i.redcap]
        if len(ids) > 1:
            problems.append(f"only one item can be the REDCap record id, not {', '.join(ids)}")
        if problems:
            raise InputError(f"data dictionary {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "_index", {i.code: i for i in self.items})

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._index)

    def item(self, code: str) -> Item:
        """The item with this code; a KeyError names the code and the closest codes."""
        try:
            return self._index[code]
        except KeyError:
            close = difflib.get_close_matches(str(code), self.codes, 3, 0.6)
            hint = f"; close matches: {', '.join(close)}" if close else f"; it has {len(self.items)} items"
            raise KeyError(f"no item {code!r} in data dictionary {self.name!r}{hint}") from None

    def of_kind(self, kind: str) -> tuple[Item, ...]:
        """The items of one record kind, in order."""
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
        return tuple(i for i in self.items if i.kind == kind)

    def with_items(self, *items: Item) -> DataDictionary:
        """A new dictionary with ``items`` added; an item with a code already present replaces it in place."""
        new = {i.code: i for i in items}
        kept = [new.pop(i.code, i) for i in self.items]
        return DataDictionary((*kept, *new.values()), self.name, self.version)

    # --- TOML -------------------------------------------------------------------------------------------------

    def to_toml(self) -> str:
        """The TOML form (see the module docstring); :meth:`from_toml` reads it back to an equal dictionary."""
        lines = [f"name = {_toml_str(self.name)}", f"version = {_toml_str(self.version)}"]
        for item in self.items:
            lines += ["", f"[items.{item.code}]"]
            lines += [f"{key} = {value}" for key, value in _item_toml(item)]
            if item.redcap:
                lines += ["", f"[items.{item.code}.redcap]"]
                lines += [f"{_toml_key(k)} = {_toml_str(v)}" for k, v in item.redcap]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "dictionary.toml") -> DataDictionary:
        """Read the TOML form. Every problem is reported at once, each naming its line, item and key."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{source}: not valid TOML: {exc}") from None
        problems: list[str] = []
        for key in raw:
            if key not in ("name", "version", "items"):
                problems.append(f"line {_line(text, None, key)}: unknown key {key!r} (name, version, items)")
        for key in ("name", "version"):
            if not isinstance(raw.get(key, ""), str):
                problems.append(f"line {_line(text, None, key)}: {key} must be a string, e.g. {key} = \"1\"")
        tables = raw.get("items", {})
        if not isinstance(tables, dict):
            problems.append("items must be tables, [items.<code>]")
            tables = {}
        items: list[Item] = []
        for code, table in tables.items():
            for key, message in _toml_item(code, table, items):
                problems.append(f"{_where(text, code, key)}: {message}")
        if problems:
            listed = "\n  ".join(problems)
            raise InputError(f"{source}: {len(problems)} problem(s) in the data dictionary:\n  {listed}")
        return cls(tuple(items), raw.get("name", ""), raw.get("version", ""))

    # --- REDCap CSV and files ---------------------------------------------------------------------------------

    def to_redcap_csv(self) -> str:
        """REDCap's data-dictionary CSV (see :mod:`allotrack.records.dictionary_redcap`)."""
        from allotrack.records.dictionary_redcap import to_redcap_csv

        return to_redcap_csv(self)

    @classmethod
    def from_redcap_csv(cls, text: str, source: str = "data dictionary CSV",
                        default_kind: str = "attribute") -> DataDictionary:  # fmt: skip
        """Read REDCap's data-dictionary CSV; ``default_kind`` is the kind of fields without an allotrack tag."""
        from allotrack.records.dictionary_redcap import from_redcap_csv

        return from_redcap_csv(text, source, default_kind)

    def save(self, path: str | Path) -> None:
        """Write to ``path``: TOML for ``.toml``, REDCap's data-dictionary CSV for ``.csv`` (UTF-8)."""
        path = Path(path)
        text = self.to_toml() if _suffix(path) == ".toml" else self.to_redcap_csv()
        with path.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    @classmethod
    def load(cls, path: str | Path, default_kind: str = "attribute") -> DataDictionary:
        """Read ``path``: TOML for ``.toml``, REDCap's data-dictionary CSV for ``.csv`` (UTF-8, BOM allowed)."""
        path = Path(path)
        suffix = _suffix(path)
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the data dictionary {path.name}: {exc}") from None
        if suffix == ".toml":
            return cls.from_toml(text, path.name)
        return cls.from_redcap_csv(text, path.name, default_kind)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".csv"):
        raise InputError(f"data dictionary {path.name}: the file must end in .toml or .csv (REDCap), not {suffix!r}")
    return suffix


# --- TOML writing ---------------------------------------------------------------------------------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_str(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return _toml_str(str(value))


def _item_toml(item: Item) -> list[tuple[str, str]]:
    out = [("label", _toml_str(item.label)), ("type", _toml_str(item.type)), ("kind", _toml_str(item.kind))]
    for key in ("unit", *_BOUNDS, "molar_mass", "form", "condition"):
        if (value := getattr(item, key)) is not None:
            out.append((key, _toml_value(value)))
    if item.required:
        out.append(("required", "true"))
    if item.choices:
        pairs = [f"[{_toml_str(c.code)}, {_toml_str(c.label)}]" for c in item.choices]
        one_line = f"[{', '.join(pairs)}]"
        out.append(("choices", one_line if len(one_line) <= 100 else "[\n" + "".join(f"  {p},\n" for p in pairs) + "]"))
    if item.note:
        out.append(("note", _toml_str(item.note)))
    return out


# --- TOML reading ---------------------------------------------------------------------------------------------

_ITEM_KEYS = tuple(f.name for f in fields(Item) if f.name != "code")


def _toml_item(code: str, table: Any, items: list[Item]) -> list[tuple[str, str]]:
    """Append the item read from ``[items.<code>]`` to ``items``, or return its (key, message) problems."""
    if not isinstance(table, dict):
        return [("", "must be a table: [items.<code>] with keys label, type, kind, ...")]
    problems = []
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _ITEM_KEYS:
            close = difflib.get_close_matches(key, _ITEM_KEYS, 1)
            hint = f"did you mean {close[0]!r}?" if close else f"keys are {', '.join(_ITEM_KEYS)}"
            problems.append((key, f"unknown key {key!r} ({hint})"))
        elif key == "choices":
            ok = isinstance(value, list) and all(
                isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in value)
            if not ok:
                problems.append((key, 'must be a list of [code, label] pairs of strings, e.g. [["1", "male"]]'))
            else:
                kwargs[key] = tuple(Choice(c[0], c[1]) for c in value)
        elif key == "redcap":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                problems.append((key, 'must be a table of REDCap column = "value" strings'))
            else:
                kwargs[key] = tuple(value.items())
        else:
            kwargs[key] = value
    if problems:
        return problems
    try:
        items.append(Item(code, **kwargs))
    except ItemProblems as exc:
        return exc.problems
    return []


def _where(text: str, code: str, key: str) -> str:
    line = _line(text, code, key)
    return (f"line {line}, " if line else "") + f"item {code!r}" + (f", key {key!r}" if key else "")


def _line(text: str, code: str | None, key: str) -> int | None:
    """1-based line of ``key`` in table ``[items.<code>]`` (the top level for code None), else of the table."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if code is not None:
        quoted = re.escape(code)
        header = re.compile(rf"""\s*\[\s*items\s*\.\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*\]""")
        start = next((n for n, s in enumerate(lines) if header.match(s)), -1)
        if start < 0:
            return None
        end = next((n for n in range(start + 1, len(lines)) if lines[n].lstrip().startswith("[")), len(lines))
        if key == "redcap":
            sub = re.compile(rf"""\s*\[\s*items\s*\.\s*"?{quoted}"?\s*\.\s*redcap\s*\]""")
            return next((n + 1 for n, s in enumerate(lines) if sub.match(s)), start + 1)
    pattern = re.compile(rf"""\s*(?:{re.escape(key)}|"{re.escape(key)}")\s*=""")
    found = next((n for n in range(start + 1 if code else 0, end) if pattern.match(lines[n])), None)
    if code is None:
        return None if found is None else found + 1
    return (found if found is not None else start) + 1


@cache
def default_dictionary() -> DataDictionary:
    """allotrack's bundled data dictionary (``records/default_dictionary.toml``): the observations,
    interventions, assessments, patient attributes and design records allotrack and its studies use."""
    from importlib.resources import files

    text = files("allotrack.records").joinpath("default_dictionary.toml").read_text(encoding="utf-8")
    return DataDictionary.from_toml(text, "default_dictionary.toml")
