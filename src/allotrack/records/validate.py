"""Validation of a study's records: every problem is reported at once (table, file line or row, column, value,
rule) and nothing is accepted unless everything is valid. Identifier values are never echoed, so reports can be
logged; a problem with a record read from a file names the file and line (header = line 1), one given as a data
frame its row (1 = the first row), and one with a stored record that record's table and natural key.

Rules: unknown columns; required values; types (dates, numbers, integers, yes/no, allowed values) and ranges;
dates are ISO 8601 (``YYYY-MM-DD``) unless the mapping file names the column's format — nothing is guessed;
duplicate natural keys; references to unknown patients, or to donors and courses of another patient; dates in the
future; and chronology — death before diagnosis, a course, infusion, observation, intervention, assessment or
enrolment after death, a course or intervention ending before it starts, randomisation before enrolment, relapse
before the first remission, last contact before the latest dated record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from allotrack.errors import AllotrackError
from allotrack.records.schema import EVENT_DATES, REMISSIONS, TABLES, Column, Records

if TYPE_CHECKING:
    from allotrack.records.dictionary import DataDictionary

MAX_LISTED = 200


@dataclass(frozen=True)
class Problem:
    """One broken rule. ``row`` is the 0-based position among the table's rows being checked; ``file`` and
    ``line`` say where that row was read (header = line 1); ``stored`` describes a stored record (by its natural
    key) when the problem is with one."""

    table: str
    row: int | None
    column: str | None
    value: Any
    rule: str
    file: str | None = None
    line: int | None = None
    stored: str | None = None

    def where(self) -> str:
        if self.stored is not None:
            return f"{self.table}, stored record {self.stored}"
        if self.file is not None:
            return f"{self.table} ({self.file}" + (f" line {self.line})" if self.line is not None else ")")
        return self.table + (f", row {self.row + 1}" if self.row is not None else "")

    def located(self, records: Records) -> Problem:
        """The same problem with the file and line its row was read from (when it came from a file)."""
        if self.row is None or self.stored is not None or self.file is not None:
            file = self.file
            if file is None and self.row is None and records.origins.get(self.table) is not None:
                files = records.origins[self.table]["file"]
                file = ", ".join(dict.fromkeys(str(f) for f in files)) if len(files) else None
            return replace(self, file=file)
        file, line = records.origin(self.table, self.row)
        return replace(self, file=file, line=line)

    def __str__(self) -> str:
        where = self.where()
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


@dataclass(frozen=True)
class _Cells:
    """A column as its distinct values and, per row, the position of its value among them (-1 = missing).

    Rules run once per distinct value and their verdicts are spread back to the rows, so ten million lab rows
    with a few thousand distinct dates are parsed a few thousand times. Typed numeric columns keep one entry
    per row (``codes`` is then the identity)."""

    values: pd.Series  # distinct values, index 0..k-1
    codes: np.ndarray

    @classmethod
    def of(cls, raw: pd.Series) -> _Cells:
        if raw.dtype.kind in "fiub":  # numbers: most values are distinct anyway
            return cls(raw.reset_index(drop=True), np.arange(len(raw)))
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        return cls(pd.Series(uniques), codes)

    def rows(self, bad: pd.Series | np.ndarray) -> list[int]:
        """Rows (0-based, ascending) whose value is flagged in ``bad`` (a mask over the distinct values)."""
        flags = np.asarray(bad, dtype=bool)
        if not flags.any():
            return []
        return np.flatnonzero(np.append(flags, False)[self.codes]).tolist()

    def spread(self, typed: pd.Series | pd.Index | np.ndarray, index: pd.Index) -> pd.Series:
        """Per-row values from per-distinct-value ``typed`` values (missing where the row is missing)."""
        array = typed.array if isinstance(typed, pd.Series | pd.Index) else typed
        taken = pd.api.extensions.take(array, self.codes, allow_fill=True)
        dtype = taken.dtype if isinstance(taken, np.ndarray) else None  # object stays object (no Arrow re-inference)
        return pd.Series(taken, index=index, dtype=dtype)


def _check_column(table: str, col: Column, raw: pd.Series, problems: list[Problem],
                  date_format: str | None = None) -> pd.Series:
    """Type one column, appending a problem for every row that breaks a rule (rows are positions in ``raw``)."""
    cells = _Cells.of(raw)
    u = cells.values
    kind = u.dtype.kind
    stripped = None
    if kind in "fiub" or kind == "M":  # already typed (numbers, dates): no text to strip
        present = u.notna().to_numpy()
    else:
        stripped = u.astype("string[pyarrow]").str.strip()  # Arrow kernels, not a Python loop per cell
        present = (stripped.fillna("") != "").to_numpy(dtype=bool)
    hide = col.kind == "id"  # identifier values are never shown
    if col.required:
        missing = np.flatnonzero(np.append(~present, True)[cells.codes])
        problems.extend(Problem(table, int(r), col.name, None, "a value is required") for r in missing)

    def flag(bad: pd.Series | np.ndarray, rule: str, shown: pd.Series | None) -> None:
        bad = np.asarray(bad, dtype=bool)
        for r in cells.rows(bad):
            value = None if shown is None else shown.iloc[cells.codes[r]]
            problems.append(Problem(table, r, col.name, value, rule))

    if col.kind == "date":
        if kind == "M":  # typed already (stored records): nothing to parse
            return cells.spread(u.dt.normalize(), raw.index)
        parsed = _parse_dates(u.where(present), date_format)
        expected = (f"not a date in the format {date_format} (the mapping file's date_format for this column)"
                    if date_format else "not a date in the format YYYY-MM-DD (ISO 8601); another format must be "
                    "named in the mapping file (date_format), it is never guessed")  # fmt: skip
        flag(present & parsed.isna().to_numpy(), expected, u)
        return cells.spread(parsed.dt.normalize(), raw.index)
    if col.kind in ("number", "integer"):
        num = pd.to_numeric(u.where(present), errors="coerce")
        flag(present & num.isna().to_numpy(), "not a number", u)
        if col.kind == "integer":
            flag(num.notna() & (num != np.floor(num)), "must be a whole number", num)
        if col.low is not None:
            flag(num < col.low, f"must be ≥ {col.low:g}", num)
        if col.high is not None:
            flag(num > col.high, f"must be ≤ {col.high:g}", num)
        return cells.spread(num.astype("float64") if kind != "f" else num, raw.index)
    if col.kind == "bool":
        mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "y": True, "n": False}
        text = u.where(present).astype(str).str.strip().str.lower()
        flag(present & ~text.isin(list(mapping)).to_numpy(), "must be yes/no (true/false, 1/0)", u)
        return cells.spread(text.map(mapping).astype("boolean"), raw.index)
    text_values = stripped if stripped is not None else u.astype("string[pyarrow]").str.strip()
    out = text_values.astype(object).where(present, None)
    if col.kind == "choice":
        flag(out.notna() & ~out.isin(col.choices), f"must be one of {list(col.choices)}", None if hide else out)
    return cells.spread(out.to_numpy(dtype=object), raw.index)


ISO_DATE = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"  # a time part (Excel cells) is dropped


def _parse_dates(values: pd.Series, date_format: str | None = None) -> pd.Series:
    """Dates in one format for the whole column: ISO 8601 ``YYYY-MM-DD`` (optionally with a time, as spreadsheet
    date cells arrive) or the ``strftime`` pattern the mapping names, matched exactly. Anything else is NaT: no
    value is guessed (``03/04/2001`` is not read as either 3 April or 4 March; ``2001`` is not 1 January)."""
    text = values.astype("string[pyarrow]").str.strip()
    if date_format is None:
        iso = text.str.fullmatch(ISO_DATE).fillna(False).astype(bool)
        return pd.to_datetime(text.where(iso).astype(object), errors="coerce", format="ISO8601")
    return pd.to_datetime(text.astype(object), errors="coerce", format=date_format, exact=True)


def type_tables(records: Records) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Column rules of every table (required values, types, ranges, allowed values, unknown columns): the
    typed tables and the problems found."""
    problems: list[Problem] = []
    clean: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        frame = records[name].reset_index(drop=True)
        formats = records.date_formats.get(name, {})
        known = {c.name for c in spec.columns}
        for extra in sorted(set(frame.columns) - known):
            problems.append(Problem(name, None, str(extra), None, "unknown column (map or drop it)"))
        if not len(frame):
            clean[name] = Records()[name]  # typed and empty
            continue
        typed = {}
        for col in spec.columns:
            if col.name not in frame.columns and not col.required:  # absent optional column: typed and empty
                typed[col.name] = _missing(col, frame.index)
                continue
            raw = frame[col.name] if col.name in frame.columns else pd.Series([None] * len(frame), dtype="object")
            if col.name not in frame.columns and col.required and len(frame):
                problems.append(Problem(name, None, col.name, None, "required column is missing"))
                typed[col.name] = raw
                continue
            typed[col.name] = _check_column(name, col, raw, problems, formats.get(col.name))
        clean[name] = pd.DataFrame(typed, index=frame.index)
    return clean, problems


def _missing(col: Column, index: pd.Index) -> pd.Series:
    """A column of missing values typed as :func:`_check_column` types it."""
    if col.kind == "date":
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    if col.kind in ("number", "integer"):
        return pd.Series(np.nan, index=index, dtype="float64")
    if col.kind == "bool":
        return pd.Series(pd.NA, index=index, dtype="boolean")
    return pd.Series(None, index=index, dtype=object)


def key_label(table: str) -> str:
    """The natural key of a table in words, e.g. ``(patient_id, date, analyte)``."""
    key = TABLES[table].natural_key
    return key[0] if len(key) == 1 else "(" + ", ".join(key) + ")"


def check_tables(clean: dict[str, pd.DataFrame], today: date | None = None, keys: bool = True) -> list[Problem]:
    """Rules across rows and tables on typed tables: duplicate natural keys (unless ``keys`` is False: an import
    classifies them itself against the stored rows), future dates, references, chronology."""
    today = today or date.today()
    problems: list[Problem] = []
    for name, spec in TABLES.items():
        out = clean[name]
        if keys and len(out):
            columns = list(spec.natural_key)
            dup = out[columns[0]].notna() & out.duplicated(columns, keep="first")
            for r in _rows(dup):
                problems.append(Problem(name, r, spec.key, None,
                                        f"duplicate key: an earlier row has the same {key_label(name)}"))  # fmt: skip
        for col in spec.columns:
            if col.kind == "date" and len(out):
                future = out[col.name].notna() & (out[col.name] > pd.Timestamp(today))
                for r in _rows(future):
                    value = str(out[col.name].iloc[r].date())
                    problems.append(Problem(name, r, col.name, value, "date is in the future"))
    patients = _PatientLookup(clean)
    for name, spec in TABLES.items():
        for col in spec.columns:
            if col.references and len(clean[name]):
                ref_table, ref_col = col.references.split(".")
                values = clean[name][col.name]
                if col.references == "patients.patient_id":
                    unknown = values.notna().to_numpy() & (patients.positions(name) < 0)
                    rule = "refers to an unknown patient"
                else:  # a donor or course of the same patient
                    ref = clean[ref_table]
                    known = pd.MultiIndex.from_arrays([ref["patient_id"], ref[ref_col]]).dropna()
                    pairs = pd.MultiIndex.from_arrays([clean[name]["patient_id"], values])
                    unknown = values.notna().to_numpy() & ~pairs.isin(known)
                    rule = f"refers to an unknown {ref_table[:-1]} (or one of another patient)"
                for r in np.flatnonzero(unknown).tolist():
                    problems.append(Problem(name, r, col.name, None, rule))
    problems.extend(_chronology(clean, patients))
    return problems


def validate_records(records: Records, today: date | None = None, dictionary: DataDictionary | None = None) -> Records:
    """Check every table and rule (the dictionary-driven kinds against ``dictionary``, by default allotrack's
    bundled one, converting their values to its units); return the records with typed columns, or raise
    :class:`ValidationError` listing every problem."""
    from allotrack.records.dictionary import default_dictionary
    from allotrack.records.validate_items import check_conditions, check_items

    clean, problems = type_tables(records)
    items = check_items(clean, dictionary or default_dictionary())
    clean = items.tables
    problems.extend(items.problems)
    problems.extend(check_tables(clean, today))
    problems.extend(check_conditions(clean, dictionary or default_dictionary()).problems)
    if problems:
        raise ValidationError([p.located(records) for p in problems])
    return Records(clean)


class _PatientLookup:
    """Each row's position in the patients table (-1 = unknown patient), found once per table, so per-patient
    values (diagnosis, death, first remission dates) reach ten million lab rows by array indexing."""

    def __init__(self, clean: dict[str, pd.DataFrame]) -> None:
        self.clean = clean
        self.index = pd.Index(clean["patients"]["patient_id"].drop_duplicates())
        self._positions: dict[str, np.ndarray] = {}

    def positions(self, table: str) -> np.ndarray:
        if table not in self._positions:
            ids = self.clean[table]["patient_id"]
            self._positions[table] = self.index.get_indexer(ids) if len(ids) else np.zeros(0, dtype=np.intp)
        return self._positions[table]

    def dates(self, table: str, by_patient: pd.Series) -> pd.Series:
        """A per-patient date (indexed by patient id) for each row of ``table`` (NaT where none)."""
        per_patient = pd.to_datetime(by_patient.reindex(self.index)).to_numpy(dtype="datetime64[ns]")
        looked_up = np.append(per_patient, np.datetime64("NaT", "ns"))[self.positions(table)]
        return pd.Series(looked_up, index=self.clean[table].index)


def _first(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.drop_duplicates("patient_id").set_index("patient_id")[column]


def _chronology(t: dict[str, pd.DataFrame], patients: _PatientLookup) -> list[Problem]:
    problems: list[Problem] = []
    diag = _first(t["patients"], "diagnosis_date")
    death = _first(t["deaths"], "date")
    for r in _rows(t["deaths"]["date"] < patients.dates("deaths", diag)):
        problems.append(Problem("deaths", r, "date", str(t["deaths"]["date"].iloc[r].date()), "death before diagnosis"))
    dated = list(EVENT_DATES)
    for table, col in dated:
        frame = t[table]
        if not len(frame):
            continue
        for r in _rows(frame[col] > patients.dates(table, death)):
            problems.append(Problem(table, r, col, str(frame[col].iloc[r].date()), "after the patient's death"))
        for r in _rows(frame[col] < patients.dates(table, diag) - pd.Timedelta(days=365)):
            problems.append(Problem(table, r, col, str(frame[col].iloc[r].date()), "more than a year before diagnosis"))
    for table, what in (("courses", "course"), ("interventions", "intervention")):
        c = t[table]
        for r in _rows(c["end_date"] < c["start_date"]):
            value = str(c["end_date"].iloc[r].date())
            problems.append(Problem(table, r, "end_date", value, f"{what} ends before it starts"))
    e = t["enrolments"]
    for r in _rows(e["randomisation_date"] < e["enrolment_date"]):
        value = str(e["randomisation_date"].iloc[r].date())
        problems.append(Problem("enrolments", r, "randomisation_date", value, "randomised before enrolment"))
    rel = t["relapses"]
    if len(rel):
        from allotrack.records.views import responses

        resp = responses(Records(t))
        first_rem = resp[resp["category"].isin(REMISSIONS)].groupby("patient_id")["date"].min()
        rem = patients.dates("relapses", first_rem)
        relapse_kind = rel["kind"] != "progression"  # myeloma progression needs no remission (missing = relapse)
        for r in _rows(relapse_kind & (rem.isna() | (rel["date"] < rem))):
            problems.append(Problem("relapses", r, "date", str(rel["date"].iloc[r].date()),
                                    "relapse before the first remission (or without any remission)"))  # fmt: skip
    fu = t["follow_up"]
    if len(fu):
        last = _latest_dates(t, [*dated, ("deaths", "date")], patients)
        for r in _rows(fu["last_contact_date"] < patients.dates("follow_up", last)):
            problems.append(Problem("follow_up", r, "last_contact_date", str(fu["last_contact_date"].iloc[r].date()),
                                    "last contact before the patient's latest dated record"))  # fmt: skip
    return problems


def _latest_dates(t: dict[str, pd.DataFrame], dated: list[tuple[str, str]], patients: _PatientLookup) -> pd.Series:
    """Each known patient's latest dated record (NaT without any), by position lookups and ``np.maximum.at``."""
    latest = np.full(len(patients.index), np.iinfo(np.int64).min, dtype=np.int64)
    for table, col in dated:
        if not len(t[table]):
            continue
        pos = patients.positions(table)
        days = t[table][col].to_numpy(dtype="datetime64[ns]").view(np.int64)
        keep = (pos >= 0) & (days != np.iinfo(np.int64).min)  # NaT is int64 min
        np.maximum.at(latest, pos[keep], days[keep])
    return pd.Series(latest.view("datetime64[ns]"), index=patients.index)
