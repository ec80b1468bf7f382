"""Validation of a study's records: every problem is reported at once (table, row, column, value, rule) and
nothing is accepted unless everything is valid. Identifier values are never echoed (rows are 0-based
positions in the table), so reports can be logged.

Rules: unknown columns; required values; types (dates, numbers, integers, yes/no, allowed values) and ranges;
duplicate keys; references to unknown patients, donors or courses; dates in the future; and chronology —
death before diagnosis, a course, infusion or assessment after death, a course ending before it starts,
relapse before the first remission, last contact before the latest dated record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from allotrack.errors import AllotrackError
from allotrack.records.schema import EVENT_DATES, REMISSIONS, TABLES, Column, Records

MAX_LISTED = 200


@dataclass(frozen=True)
class Problem:
    table: str
    row: int | None
    column: str | None
    value: Any
    rule: str

    def __str__(self) -> str:
        where = self.table + (f", row {self.row}" if self.row is not None else "")
        where += f", column '{self.column}'" if self.column else ""
        value = self.value.item() if hasattr(self.value, "item") else self.value  # numpy scalar -> Python
        shown = "" if value is None else f" (value {value!r})"
        return f"{where}{shown}: {self.rule}"


class ValidationError(AllotrackError, ValueError):
    """The records break one or more rules; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = f"\n  … and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        super().__init__(f"{len(problems)} problem(s) in the records; nothing was imported:\n{shown}{more}")


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask.to_numpy())]


def _check_column(table: str, col: Column, raw: pd.Series, problems: list[Problem]) -> pd.Series:
    kind = raw.dtype.kind
    stripped = None
    if kind in "fiu" or kind == "M":  # already typed (numbers, dates): no text to strip
        present = raw.notna()
    else:
        stripped = raw.astype("string[pyarrow]").str.strip()  # Arrow kernels, not a Python loop per cell
        present = pd.Series((stripped.fillna("") != "").to_numpy(dtype=bool), index=raw.index)
    hide = col.kind == "id"  # identifier values are never shown
    if col.required:
        for r in _rows(~present):
            problems.append(Problem(table, r, col.name, None, "a value is required"))
    if col.kind == "date":
        if kind == "M":  # typed already (stored records): nothing to parse
            return raw.dt.normalize()
        parsed = pd.to_datetime(raw.where(present), errors="coerce", format="mixed")
        for r in _rows(present & parsed.isna()):
            problems.append(Problem(table, r, col.name, raw.iloc[r], "not a date (use YYYY-MM-DD)"))
        return parsed.dt.normalize()
    if col.kind in ("number", "integer"):
        num = pd.to_numeric(raw.where(present), errors="coerce")
        for r in _rows(present & num.isna()):
            problems.append(Problem(table, r, col.name, raw.iloc[r], "not a number"))
        if col.kind == "integer":
            for r in _rows(num.notna() & (num != np.floor(num))):
                problems.append(Problem(table, r, col.name, num.iloc[r], "must be a whole number"))
        if col.low is not None:
            for r in _rows(num < col.low):
                problems.append(Problem(table, r, col.name, num.iloc[r], f"must be ≥ {col.low:g}"))
        if col.high is not None:
            for r in _rows(num > col.high):
                problems.append(Problem(table, r, col.name, num.iloc[r], f"must be ≤ {col.high:g}"))
        return num
    if col.kind == "bool":
        mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "y": True, "n": False}
        text = raw.where(present).astype(str).str.strip().str.lower()
        bad = present & ~text.isin(list(mapping))
        for r in _rows(bad):
            problems.append(Problem(table, r, col.name, raw.iloc[r], "must be yes/no (true/false, 1/0)"))
        return text.map(mapping).astype("boolean")
    text_values = stripped if stripped is not None else raw.astype("string[pyarrow]").str.strip()
    out = text_values.astype(object).where(present.to_numpy(), None)
    if col.kind == "choice":
        for r in _rows(out.notna() & ~out.isin(col.choices)):
            problems.append(
                Problem(table, r, col.name, None if hide else out.iloc[r], f"must be one of {list(col.choices)}")
            )
    return out


def type_tables(records: Records) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Column rules of every table (required values, types, ranges, allowed values, unknown columns): the
    typed tables and the problems found."""
    problems: list[Problem] = []
    clean: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        frame = records[name].reset_index(drop=True)
        known = {c.name for c in spec.columns}
        for extra in sorted(set(frame.columns) - known):
            problems.append(Problem(name, None, str(extra), None, "unknown column (map or drop it)"))
        typed = {}
        for col in spec.columns:
            raw = frame[col.name] if col.name in frame.columns else pd.Series([None] * len(frame), dtype="object")
            if col.name not in frame.columns and col.required and len(frame):
                problems.append(Problem(name, None, col.name, None, "required column is missing"))
                typed[col.name] = raw
                continue
            typed[col.name] = _check_column(name, col, raw, problems)
        clean[name] = pd.DataFrame(typed, index=frame.index)
    return clean, problems


def check_tables(clean: dict[str, pd.DataFrame], today: date | None = None) -> list[Problem]:
    """Rules across rows and tables on typed tables: duplicate keys, future dates, references, chronology."""
    today = today or date.today()
    problems: list[Problem] = []
    for name, spec in TABLES.items():
        out = clean[name]
        if spec.key and len(out):
            dup = out[spec.key].notna() & out[spec.key].duplicated(keep="first")
            for r in _rows(dup):
                problems.append(Problem(name, r, spec.key, None, "duplicate key (already used in an earlier row)"))
        for col in spec.columns:
            if col.kind == "date" and len(out):
                future = out[col.name].notna() & (out[col.name] > pd.Timestamp(today))
                for r in _rows(future):
                    value = str(out[col.name].iloc[r].date())
                    problems.append(Problem(name, r, col.name, value, "date is in the future"))
    for name, spec in TABLES.items():
        for col in spec.columns:
            if col.references and len(clean[name]):
                ref_table, ref_col = col.references.split(".")
                known_ids = set(clean[ref_table][ref_col].dropna())
                values = clean[name][col.name]
                for r in _rows(values.notna() & ~values.isin(known_ids)):
                    problems.append(Problem(name, r, col.name, None, f"refers to an unknown {ref_table[:-1]}"))
    problems.extend(_chronology(clean))
    return problems


def validate_records(records: Records, today: date | None = None) -> Records:
    """Check every table and rule; return the records with typed columns, or raise :class:`ValidationError`
    listing every problem."""
    clean, problems = type_tables(records)
    problems.extend(check_tables(clean, today))
    if problems:
        raise ValidationError(problems)
    return Records(clean)


def _dates_of(keys: pd.Series, by_patient: pd.Series) -> pd.Series:
    """Look up a per-patient date for each row (typed as dates even when a table is empty)."""
    if not len(keys) or not len(by_patient):
        return pd.Series(pd.NaT, index=keys.index, dtype="datetime64[ns]")
    return pd.to_datetime(keys.map(by_patient))


def _chronology(t: dict[str, pd.DataFrame]) -> list[Problem]:
    problems: list[Problem] = []
    diag = t["patients"].drop_duplicates("patient_id").set_index("patient_id")["diagnosis_date"]
    death = t["deaths"].drop_duplicates("patient_id").set_index("patient_id")["date"]
    for r in _rows(t["deaths"]["date"] < _dates_of(t["deaths"]["patient_id"], diag)):
        problems.append(Problem("deaths", r, "date", str(t["deaths"]["date"].iloc[r].date()), "death before diagnosis"))
    dated = list(EVENT_DATES)
    for table, col in dated:
        frame = t[table]
        if not len(frame):
            continue
        d_death = _dates_of(frame["patient_id"], death)
        for r in _rows(frame[col] > d_death):
            problems.append(Problem(table, r, col, str(frame[col].iloc[r].date()), "after the patient's death"))
        for r in _rows(frame[col] < _dates_of(frame["patient_id"], diag) - pd.Timedelta(days=365)):
            problems.append(Problem(table, r, col, str(frame[col].iloc[r].date()), "more than a year before diagnosis"))
    c = t["courses"]
    for r in _rows(c["end_date"] < c["start_date"]):
        value = str(c["end_date"].iloc[r].date())
        problems.append(Problem("courses", r, "end_date", value, "course ends before it starts"))
    resp, rel = t["responses"], t["relapses"]
    if len(rel):
        first_rem = resp[resp["category"].isin(REMISSIONS)].groupby("patient_id")["date"].min()
        rem = _dates_of(rel["patient_id"], first_rem)
        relapse_kind = rel["kind"] != "progression"  # myeloma progression needs no remission (missing = relapse)
        for r in _rows(relapse_kind & (rem.isna() | (rel["date"] < rem))):
            problems.append(Problem("relapses", r, "date", str(rel["date"].iloc[r].date()),
                                    "relapse before the first remission (or without any remission)"))  # fmt: skip
    fu = t["follow_up"]
    if len(fu):
        latest = pd.concat([t[table][["patient_id", col]].rename(columns={col: "d"}) for table, col in dated]
                           + [t["deaths"][["patient_id", "date"]].rename(columns={"date": "d"})])  # fmt: skip
        last = latest.groupby("patient_id")["d"].max()
        for r in _rows(fu["last_contact_date"] < _dates_of(fu["patient_id"], last)):
            problems.append(Problem("follow_up", r, "last_contact_date", str(fu["last_contact_date"].iloc[r].date()),
                                    "last contact before the patient's latest dated record"))  # fmt: skip
    return problems
