"""Validation of the dictionary-driven record kinds (observations, interventions, assessments, attributes) against
the study's data dictionary (:mod:`allotrack.records.dictionary`), after their columns have been typed.

Per row, the dictionary item it names (``item``, or ``agent`` for an intervention) decides the rules, as REDCap's
data dictionary decides a field's validation:

- the item must exist and be of the table's kind (an ``anc`` row among the assessments is refused);
- a number or integer item needs a number in ``value`` (``dose`` for interventions) — or, for an observation, a
  below/above-limit-of-detection flag — and is checked against the allowed range (an error) and the plausible
  range (a warning, with the number of rows);
- values given in another unit are converted to the dictionary's unit (one factor per distinct unit,
  :func:`allotrack.records.units.conversion_factor`; a unit that cannot be converted names only its own rows);
  the value as reported is kept in ``reported``; a missing unit means the dictionary's unit (with a warning
  unless the unit is % or 1);
- a choice item needs one of its codes in ``value_text`` (a choice label, in any case, is accepted and stored as
  its code); a yes/no item is stored as ``value`` 1 or 0; a text item keeps ``value_text``; a date item needs an
  ISO date;
- an observation or assessment needs a date or a visit label.

Identifier values are never echoed; every problem names the table, row, column, value and rule.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dictionary import DataDictionary, Item
from allotrack.records.schema import DICTIONARY_TABLES
from allotrack.records.validate import Problem

KIND_OF_TABLE = {"observations": "observation", "interventions": "intervention", "assessments": "assessment",
                 "attributes": "attribute"}  # fmt: skip
YES = {"1": 1.0, "yes": 1.0, "y": 1.0, "true": 1.0, "0": 0.0, "no": 0.0, "n": 0.0, "false": 0.0}


@dataclass(frozen=True)
class ItemCheck:
    """The checked tables (converted to the dictionary's units), the problems and the warnings."""

    tables: dict[str, pd.DataFrame]
    problems: list[Problem]
    warnings: list[str]


def check_items(clean: dict[str, pd.DataFrame], dictionary: DataDictionary) -> ItemCheck:
    """Check (and convert) every dictionary-driven table of typed records against ``dictionary``."""
    out = dict(clean)
    problems: list[Problem] = []
    warnings: list[str] = []
    for table, code_column in DICTIONARY_TABLES.items():
        frame = clean.get(table)
        if frame is None or not len(frame):
            continue
        frame = frame.copy()
        codes, uniques = pd.factorize(frame[code_column], use_na_sentinel=True)
        for position, code in enumerate(uniques.tolist()):
            rows = np.flatnonzero(codes == position)
            item = _item(dictionary, table, code_column, str(code), rows, problems)
            if item is not None:
                _check_rows(table, frame, rows, item, problems, warnings)
        if table == "assessments":
            problems.extend(_bad_inputs(frame))
        if table in ("observations", "assessments"):
            undated = frame["date"].isna() & frame["visit"].isna()
            problems.extend(Problem(table, int(r), "date", None, "a date or a visit label is required")
                            for r in np.flatnonzero(undated.to_numpy()))  # fmt: skip
        out[table] = frame
    return ItemCheck(out, problems, warnings)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _bad_inputs(frame: pd.DataFrame) -> list[Problem]:
    """An assessment's raw ``inputs`` must be a JSON object (what the grade was computed from)."""
    out = []
    for r in np.flatnonzero(frame["inputs"].notna().to_numpy()):
        text = frame["inputs"].iloc[r]
        try:
            ok = isinstance(json.loads(text), dict)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            out.append(Problem("assessments", int(r), "inputs", None, 'not a JSON object (raw inputs are written '
                               'as {"name": value, ...}, e.g. {"skin_bsa": 30})'))  # fmt: skip
    return out


def _item(dictionary: DataDictionary, table: str, column: str, code: str, rows: np.ndarray,
          problems: list[Problem]) -> Item | None:  # fmt: skip
    kind = KIND_OF_TABLE[table]
    if code not in dictionary:
        close = difflib.get_close_matches(code, dictionary.codes, n=3)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        rule = f"unknown item (not in the data dictionary{hint}); add it to the dictionary or correct the code"
        problems.extend(Problem(table, int(r), column, code, rule) for r in rows)
        return None
    item = dictionary.item(code)
    if item.kind != kind:
        home = "a study-design table" if item.kind == "design" else f"the {item.kind}s table"
        rule = (f"item '{code}' is {_article(item.kind)} {item.kind} in the data dictionary, not {_article(kind)} "
                f"{kind} (give its rows in {home}, or set its kind: kind = \"{kind}\" in the TOML dictionary, "
                f"@ALLOTRACK-KIND={kind} in a REDCap dictionary's Field Annotation)")  # fmt: skip
        problems.extend(Problem(table, int(r), column, code, rule) for r in rows)
        return None
    return item


def _check_rows(table: str, frame: pd.DataFrame, rows: np.ndarray, item: Item, problems: list[Problem],
                warnings: list[str]) -> None:  # fmt: skip
    value_column = "dose" if table == "interventions" else "value"
    if item.type in ("number", "integer"):
        _check_numbers(table, frame, rows, item, value_column, problems, warnings)
    elif table == "interventions":
        return
    elif item.type in ("choice", "yesno"):
        _check_choices(table, frame, rows, item, problems)
    elif item.type == "date":
        text = frame["value_text"].iloc[rows]
        bad = text.notna() & ~text.astype("string").str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).astype(bool)
        problems.extend(Problem(table, int(rows[i]), "value_text", text.iloc[i], "not a date in the format YYYY-MM-DD")
                        for i in np.flatnonzero(bad.to_numpy()))  # fmt: skip


def _check_numbers(table: str, frame: pd.DataFrame, rows: np.ndarray, item: Item, column: str,
                   problems: list[Problem], warnings: list[str]) -> None:  # fmt: skip
    values = frame[column].to_numpy(dtype="float64", na_value=np.nan)[rows]
    flagged = np.zeros(len(rows), bool)
    if table == "observations":
        flagged = (frame["below_lod"].fillna(False).to_numpy(dtype=bool) |
                   frame["above_lod"].fillna(False).to_numpy(dtype=bool))[rows]  # fmt: skip
    if table != "interventions":
        missing = np.isnan(values) & ~flagged
        problems.extend(Problem(table, int(rows[i]), column, None, f"item '{item.code}' needs a number")
                        for i in np.flatnonzero(missing))  # fmt: skip
        if "value_text" in frame.columns:
            text = frame["value_text"].to_numpy(dtype=object)[rows]
            for i in np.flatnonzero(pd.notna(text) & ~np.isnan(values)):
                problems.append(Problem(table, int(rows[i]), "value_text", text[i],
                                        f"item '{item.code}' is a number: give it in '{column}' only"))  # fmt: skip
    if item.unit is not None and "unit" in frame.columns:  # attributes and assessments carry no unit column
        unitless = frame["unit"].iloc[rows].isna().to_numpy() & ~np.isnan(values)
        if unitless.any() and item.unit not in ("%", "1"):
            warnings.append(f"{table}: {int(unitless.sum())} value(s) of '{item.code}' have no unit and were taken "
                            f"to be in the dictionary's unit {item.unit} (give the unit if they are not)")  # fmt: skip
        values = _converted(table, frame, rows, item, column, values, problems)
    if item.type == "integer":
        fraction = ~np.isnan(values) & (values != np.floor(values))
        problems.extend(Problem(table, int(rows[i]), column, float(values[i]), "must be a whole number")
                        for i in np.flatnonzero(fraction))  # fmt: skip
    unit = f" {item.unit}" if item.unit else ""
    for bound, bad, rule in ((item.low, values < (item.low if item.low is not None else 0), "≥"),
                             (item.high, values > (item.high if item.high is not None else 0), "≤")):  # fmt: skip
        if bound is None:
            continue
        problems.extend(Problem(table, int(rows[i]), column, float(values[i]),
                                f"item '{item.code}' must be {rule} {bound:g}{unit}{_as_reported(frame, rows[i])}")
                        for i in np.flatnonzero(bad))  # fmt: skip
    implausible = np.zeros(len(rows), bool)
    if isinstance(item.plausible_low, int | float):
        implausible |= values < float(item.plausible_low)
    if isinstance(item.plausible_high, int | float):
        implausible |= values > float(item.plausible_high)
    if implausible.any():
        low = "" if item.plausible_low is None else f"{item.plausible_low:g}"
        high = "" if item.plausible_high is None else f"{item.plausible_high:g}"
        warnings.append(f"{table}: {int(implausible.sum())} value(s) of '{item.code}' outside the plausible range "
                        f"{low}–{high}{unit} (kept; check them)")  # fmt: skip
    frame.loc[frame.index[rows], column] = values


def _as_reported(frame: pd.DataFrame, row: int) -> str:
    """`` (reported as 2.5 mmol/L)`` when the row's value was converted from another unit."""
    if "reported" not in frame.columns:
        return ""
    text = frame["reported"].iloc[row]
    return f" (reported as {text})" if isinstance(text, str) else ""


def _converted(table: str, frame: pd.DataFrame, rows: np.ndarray, item: Item, column: str, values: np.ndarray,
               problems: list[Problem]) -> np.ndarray:  # fmt: skip
    """Values in the dictionary's unit; rows in another unit keep what was reported in ``reported``."""
    from allotrack.records.units import conversion_factor, normalise_unit

    assert item.unit is not None
    given = frame["unit"].to_numpy(dtype=object)[rows]
    unit_codes, distinct = pd.factorize(pd.Series(given, dtype=object), use_na_sentinel=True)
    normalised = np.array([*(normalise_unit(str(u)) for u in distinct), item.unit], dtype=object)
    codes = normalised[unit_codes]  # a missing unit (code -1) is the dictionary's unit
    other = (codes != item.unit) & ~np.isnan(values)
    if not other.any():
        frame.loc[frame.index[rows], "unit"] = item.unit
        return values
    converted = values.copy()
    failed = np.zeros(len(rows), dtype=bool)
    for unit in pd.unique(codes[other]):  # one factor per distinct unit; a unit that fails names only its rows
        mine = other & (codes == unit)
        try:
            converted[mine] = values[mine] * conversion_factor(str(unit), item.unit, item.molar_mass)
        except InputError as err:
            failed |= mine
            problems.extend(Problem(table, int(rows[i]), "unit", given[i], f"cannot be converted to the "
                                    f"dictionary's unit {item.unit} for '{item.code}': {err.rule}")
                            for i in np.flatnonzero(mine))  # fmt: skip
    other &= ~failed
    if "reported" in frame.columns:
        reported = frame["reported"].to_numpy(dtype=object)[rows].copy()
        for i in np.flatnonzero(other):
            reported[i] = f"{values[i]:g} {given[i]}"
        frame.loc[frame.index[rows], "reported"] = reported
    frame.loc[frame.index[rows], "unit"] = item.unit
    return converted


def _check_choices(table: str, frame: pd.DataFrame, rows: np.ndarray, item: Item, problems: list[Problem]) -> None:
    text = frame["value_text"].to_numpy(dtype=object)[rows]
    if item.type == "yesno":
        numbers = frame["value"].to_numpy(dtype="float64", na_value=np.nan)[rows]
        for i, t in enumerate(text):
            if pd.isna(t) and np.isnan(numbers[i]):
                problems.append(Problem(table, int(rows[i]), "value_text", None, f"item '{item.code}' needs yes or no"))
            elif not pd.isna(t):
                if str(t).strip().lower() not in YES:
                    problems.append(Problem(table, int(rows[i]), "value_text", t, "must be yes/no (1/0)"))
                else:
                    numbers[i] = YES[str(t).strip().lower()]
        frame.loc[frame.index[rows], "value"] = numbers
        frame.loc[frame.index[rows], "value_text"] = None
        return
    by_label = {c.label.casefold(): c.code for c in item.choices}  # labels as typed in any case
    codes = set(item.choice_codes)
    numbers = frame["value"].to_numpy(dtype="float64", na_value=np.nan)[rows] if "value" in frame.columns else None
    out = text.copy()
    for i, t in enumerate(text):
        if pd.isna(t):
            given = numbers is not None and not np.isnan(numbers[i])
            rule = (f"item '{item.code}' is a choice: give its code in 'value_text', not a number in 'value'" if given
                    else f"item '{item.code}' needs one of its choices {sorted(codes)}")  # fmt: skip
            shown = float(numbers[i]) if given and numbers is not None else None
            problems.append(Problem(table, int(rows[i]), "value_text", shown, rule))
        elif str(t) in codes:
            continue
        elif str(t).strip().casefold() in by_label:
            out[i] = by_label[str(t).strip().casefold()]
        else:
            problems.append(Problem(table, int(rows[i]), "value_text", t, f"must be one of the choices of "
                                    f"'{item.code}': {sorted(codes)} (or their labels)"))  # fmt: skip
    frame.loc[frame.index[rows], "value_text"] = out


def check_conditions(tables: dict[str, pd.DataFrame], dictionary: DataDictionary,
                     only: set[str] | None = None) -> ItemCheck:  # fmt: skip
    """Branching logic and required attributes, across rows (run on the records being checked together with the
    stored records of the same patients):

    - a row of an item with a ``condition`` (REDCap branching logic, :mod:`allotrack.records.branching`) is
      refused when the condition is false for its patient — evaluated on the patient's attributes and, for an
      observation or assessment, on the values of the same table for the same patient and day (or visit);
    - a required attribute must be recorded for every patient whose condition (if any) holds.

    A condition outside the supported subset is not checked and says so in a warning (a store refuses to save
    such a dictionary). ``only`` restricts the checks to those item codes."""
    from allotrack.records.branching import UnsupportedLogic, holds, parse

    problems: list[Problem] = []
    warnings: list[str] = []
    attributes = _patient_values(tables.get("attributes"), ("patient_id",))
    for item in dictionary:
        if only is not None and item.code not in only:
            continue
        if item.condition is None and not (item.required and item.kind == "attribute"):
            continue
        try:
            tree = parse(item.condition) if item.condition is not None else None
        except UnsupportedLogic as err:
            warnings.append(f"the condition of item '{item.code}' was not checked: {err}")
            continue
        table = next((t for t, k in KIND_OF_TABLE.items() if k == item.kind), None)
        frame = tables.get(table) if table is not None else None
        if tree is not None and table is not None and frame is not None and len(frame):
            code_column = DICTIONARY_TABLES[table]
            rows = np.flatnonzero((frame[code_column] == item.code).to_numpy(dtype=bool))
            if len(rows):
                same_day = _same_day_values(frame, table, rows)
                for r in rows:
                    pid = frame["patient_id"].iloc[r]
                    values = {**attributes.get((pid,), {}), **same_day.get(int(r), {})}
                    if not holds(tree, values):
                        problems.append(Problem(table, int(r), code_column, item.code, f"item '{item.code}' is "
                                                f"recorded only when {item.condition} (branching logic), which is "
                                                "not so for this patient"))  # fmt: skip
        if item.required and item.kind == "attribute":
            patients = tables.get("patients")
            if patients is None:
                continue
            for position, pid in enumerate(patients["patient_id"].tolist()):
                values = attributes.get((pid,), {})
                if item.code not in values and (tree is None or holds(tree, values)):
                    problems.append(Problem("patients", position, None, None, f"required attribute '{item.code}' is "
                                            "missing for this patient"))  # fmt: skip
    return ItemCheck(tables, problems, warnings)


def _value_of(value: Any, text: Any) -> Any:
    """The coded text, else the number, else None."""
    if isinstance(text, str):
        return text
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _patient_values(frame: pd.DataFrame | None, by: tuple[str, ...]) -> dict[tuple[object, ...], dict[str, object]]:
    """Item values grouped by ``by`` columns (e.g. per patient), the coded text or else the number."""
    out: dict[tuple[object, ...], dict[str, object]] = {}
    if frame is None or not len(frame):
        return out
    keys = zip(*(frame[c].tolist() for c in by), strict=True)
    for key, item, value, text in zip(keys, frame["item"].tolist(), frame["value"].tolist(),
                                      frame["value_text"].tolist(), strict=True):  # fmt: skip
        out.setdefault(tuple(key), {})[str(item)] = _value_of(value, text)
    return out


def _same_day_values(frame: pd.DataFrame, table: str, rows: np.ndarray) -> dict[int, dict[str, object]]:
    """For each of ``rows``: the values of the same table recorded for its patient on its day (or visit)."""
    if table not in ("observations", "assessments"):
        return {}
    context = frame["date"].astype(object).where(frame["date"].notna(), frame["visit"])
    keyed = frame.assign(_context=context)
    wanted = set(zip(keyed["patient_id"].iloc[rows].tolist(), keyed["_context"].iloc[rows].tolist(), strict=True))
    mask = pd.Series(list(zip(keyed["patient_id"].tolist(), keyed["_context"].tolist(), strict=True)),
                     index=frame.index).isin(wanted).to_numpy()  # fmt: skip
    values = _patient_values(keyed[mask], ("patient_id", "_context"))
    return {int(r): values.get((keyed["patient_id"].iloc[r], keyed["_context"].iloc[r]), {}) for r in rows}
