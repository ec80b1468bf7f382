"""Wide files reshaped to the long, dictionary-driven record kinds (observations, assessments, attributes).

Study data often arrive wide: one row per patient (or per patient and visit) and one column per dictionary item
(and per visit), as a REDCap export or a spreadsheet does::

    patient_id,il6_day0,il6_day1,il6_day7          patient_id,visit,date,anc,plt,bili
    p1,12.5,340,8.1                                p1,day 7,2020-01-08,0.4,21,1.1

Every column whose name is an item code of the data dictionary (an observation, assessment or attribute item)
gives rows of that kind's table, one per non-empty cell. A column ``<code>_<suffix>`` whose suffix is a key of
``visits`` (``{"day0": "day 0"}``) gives rows with that visit label. The visit and date columns (``visit_column``,
``date_column``; by default the columns named ``visit`` and ``date``, if the file has them) give every item of
their row its visit label and date; a suffix's visit label takes precedence, and attributes take only the date.
``units`` names the unit of an observation item's columns when the file does not give values in the dictionary's
unit (validation converts them and keeps the value as reported).

Cells stay text, as for every file: numbers (number and integer items) go to ``value``, everything else (choice,
yes/no, text and date items) to ``value_text``; validation types and checks them when the records are stored.
Each row produced keeps the file and line of the wide row it came from, so problems name that file and line.
Columns that are neither ``patient_id``, the visit or date column nor item columns are refused, all at once, with
close item codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import InputError
from allotrack.records.dictionary import DataDictionary, Item
from allotrack.records.schema import TABLES

__all__ = ["WideLayout", "reshape_wide"]

# the record kinds a wide column can hold, and their tables
TABLE_OF_KIND = {"observation": "observations", "assessment": "assessments", "attribute": "attributes"}
_KEYS = ("visit_column", "date_column", "visits", "units")


@dataclass(frozen=True)
class WideLayout:
    """How one wide source is read: a mapping file's ``[wide."<file stem or sheet>"]`` section."""

    visit_column: str | None = None
    date_column: str | None = None
    visits: Mapping[str, str] = field(default_factory=dict)  # column suffix -> visit label
    units: Mapping[str, str] = field(default_factory=dict)  # item code -> unit of its columns

    @classmethod
    def from_toml(cls, name: str, raw: Any) -> WideLayout:
        """The layout a ``[wide."<name>"]`` section gives; a problem names the section and key."""
        section = f'[wide."{name}"]'
        if not isinstance(raw, dict):
            raise InputError(f'mapping {section} must be a table (e.g. visit_column = "visit")', table="mapping")
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise InputError(f"mapping section {section} has unknown key(s) {unknown}; use {list(_KEYS)}",
                             table="mapping")  # fmt: skip
        columns = {}
        for key in ("visit_column", "date_column"):
            value = raw.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"mapping {section} {key} must name a column, not {value!r}", table="mapping")
            columns[key] = value
        tables = {}
        for key in ("visits", "units"):
            value = raw.get(key, {})
            if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip() and str(k).strip()
                                                      for k, v in value.items()):  # fmt: skip
                example = '{ day0 = "day 0" }' if key == "visits" else '{ bili = "umol/L" }'
                raise InputError(f"mapping {section} {key} must be a table of non-empty texts, e.g. {key} = "
                                 f"{example}", table="mapping")  # fmt: skip
            tables[key] = {str(k): str(v) for k, v in value.items()}
        return cls(columns["visit_column"], columns["date_column"], tables["visits"], tables["units"])


def reshape_wide(
    frame: pd.DataFrame,
    dictionary: DataDictionary,
    *,
    source_label: str,
    lines: np.ndarray,
    visit_column: str | None = None,
    date_column: str | None = None,
    visits: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The long tables one wide source gives (``observations``, ``assessments``, ``attributes``: only those with
    rows), and per table the origins of its rows (columns ``file`` and ``line``, aligned with the rows; ``lines``
    holds each row's line in the source, the header being line 1). Rows are in the order of the source's lines.

    Raises :class:`~allotrack.errors.InputError` for a missing ``patient_id``, visit or date column, for columns
    that are not items (all of them, with close item codes), and for ``units`` naming an item wrongly."""
    visits, units = dict(visits or {}), dict(units or {})
    names = [str(c) for c in frame.columns]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"{source_label}: column(s) {', '.join(twice)} appear more than once in the header")
    for key, column in (("visit_column", visit_column), ("date_column", date_column)):
        if column is not None and column not in names:
            raise InputError(f"{source_label}: there is no column {column!r} (named as its {key})")
    visit_column = visit_column or ("visit" if "visit" in names else None)
    date_column = date_column or ("date" if "date" in names else None)
    if "patient_id" not in names:
        raise InputError(f"{source_label}: a wide file needs a patient_id column")
    fixed = ["patient_id", visit_column or "visit", date_column or "date"]
    targets = _item_columns(dictionary, source_label, [n for n in names if n not in fixed], visits, fixed)
    _check_units(dictionary, source_label, units)

    text = frame.copy()
    text.columns = names
    pid = text["patient_id"].to_numpy(dtype=object)
    row_visit = _cells(text[visit_column]) if visit_column else np.full(len(text), None, dtype=object)
    row_date = _cells(text[date_column]) if date_column else np.full(len(text), None, dtype=object)
    pieces: dict[str, list[pd.DataFrame]] = {}
    for position, (column, item, visit) in enumerate(targets):
        cells = _cells(text[column])
        rows = np.flatnonzero(pd.notna(cells))
        if not len(rows):
            continue
        table = TABLE_OF_KIND[item.kind]
        numeric = item.type in ("number", "integer")
        piece: dict[str, Any] = {
            "patient_id": pid[rows], "item": item.code, "date": row_date[rows],
            "value": cells[rows] if numeric else None, "value_text": None if numeric else cells[rows],
            "_row": rows, "_column": position,
        }  # fmt: skip
        if table != "attributes":
            piece["visit"] = row_visit[rows] if visit is None else visit
        if table == "observations":
            piece["unit"] = units.get(item.code)
        pieces.setdefault(table, []).append(pd.DataFrame(piece))
    tables: dict[str, pd.DataFrame] = {}
    origins: dict[str, pd.DataFrame] = {}
    for table, parts in pieces.items():
        long = pd.concat(parts, ignore_index=True).sort_values(["_row", "_column"], kind="stable")
        order = [c.name for c in TABLES[table].columns if c.name in long.columns]
        tables[table] = long[order].reset_index(drop=True).astype(object)
        origins[table] = pd.DataFrame({"file": pd.Categorical([source_label] * len(long)),
                                       "line": np.asarray(lines)[long["_row"].to_numpy()]})  # fmt: skip
    return tables, origins


def _cells(column: pd.Series) -> np.ndarray:
    """The column's cells as text (an empty or blank cell is missing: it gives no row)."""
    text = column.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None).to_numpy(dtype=object)


def _item_columns(dictionary: DataDictionary, label: str, columns: list[str], visits: dict[str, str],
                  fixed: list[str]) -> list[tuple[str, Item, str | None]]:  # fmt: skip
    """(column, item, visit label from its suffix or None) per item column; every other column is refused."""
    suffixes = sorted(visits, key=len, reverse=True)
    targets: list[tuple[str, Item, str | None]] = []
    unknown: list[str] = []
    misplaced: list[str] = []
    for column in columns:
        code, visit = column, None
        if code not in dictionary:
            suffix = next((s for s in suffixes if column.endswith(f"_{s}")
                           and column[: -len(s) - 1] in dictionary), None)  # fmt: skip
            if suffix is None:
                unknown.append(column)
                continue
            code, visit = column[: -len(suffix) - 1], visits[suffix]
        item = dictionary.item(code)
        if item.kind not in TABLE_OF_KIND:
            misplaced.append(f"{column} (item '{code}' is of kind {item.kind})")
        elif item.kind == "attribute" and visit is not None:
            misplaced.append(f"{column} (attribute '{code}' is one value per patient: it has no visit)")
        else:
            targets.append((column, item, visit))
    problems = []
    if unknown:
        what = f"column {unknown[0]} is" if len(unknown) == 1 else f"columns {', '.join(unknown)} are"
        problems.append(f"{what} neither items of the data dictionary nor {'/'.join(fixed)}"
                        + _hints(dictionary, unknown, visits))  # fmt: skip
    if misplaced:
        problems.append(f"column(s) {'; '.join(misplaced)} cannot be read from a wide file (only observation, "
                        "assessment and attribute items can)")  # fmt: skip
    if problems:
        raise InputError(f"{label}: " + "; ".join(problems))
    if not targets:
        raise InputError(f"{label}: no column is an item of the data dictionary (observation, assessment or "
                         "attribute); a wide file has one column per item")  # fmt: skip
    return targets


def _hints(dictionary: DataDictionary, unknown: list[str], visits: dict[str, str]) -> str:
    """Close item codes for the unknown columns (and a suffix that is not a key of ``visits``)."""
    codes = [i.code for i in dictionary if i.kind in TABLE_OF_KIND]
    hints = []
    for column in unknown:
        code, _, suffix = column.rpartition("_")
        if code in dictionary and suffix:
            known = f"the visits are {', '.join(visits)}" if visits else "no visits are named"
            hints.append(f"{column} → item {code} at visit suffix '{suffix}'? ({known}: map it in the "
                         f"mapping's [wide.<name>.visits])")  # fmt: skip
        elif close := difflib.get_close_matches(column.lower(), codes, 3, 0.6):
            hints.append(f"{column} → {' or '.join(close)}")
    return f"; close item codes: {'; '.join(hints)}" if hints else ""


def _check_units(dictionary: DataDictionary, label: str, units: dict[str, str]) -> None:
    problems = []
    for code in units:
        if code not in dictionary:
            close = difflib.get_close_matches(code, dictionary.codes, 3, 0.6)
            problems.append(f"'{code}' is not an item of the data dictionary"
                            + (f" (close item codes: {', '.join(close)})" if close else ""))  # fmt: skip
        elif (item := dictionary.item(code)).kind != "observation" or item.unit is None:
            problems.append(f"'{code}' has no unit to convert to (only observation items with a unit do)")
    if problems:
        raise InputError(f"{label}: the units name items wrongly: {'; '.join(problems)}")
