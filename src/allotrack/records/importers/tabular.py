"""Read record tables from CSV, Excel or statistical-package files, applying a mapping.

Mapping file (TOML)::

    encoding = "latin-1"     # how CSV files are encoded (default UTF-8, a byte-order mark allowed)
    date_format = "%d/%m/%Y" # every date column of every table, unless a table or column names its own

    [tables]                 # file stem or sheet name -> table
    "Baseline" = "patients"

    [patients]
    date_format = "%d.%m.%Y" # this table's date columns

    [patients.rename]        # source column -> schema column
    "Patient ID" = "patient_id"

    [patients.recode.sex]    # value recoding per column
    "male" = "M"
    "female" = "F"

    [labs.date_formats]      # one column's format
    date = "%Y%m%d"

Every value is read as text (validation parses dates and numbers and reports what it cannot parse), so nothing
is silently converted on the way in; dates must be ISO 8601 (``YYYY-MM-DD``) unless a format is named here, and
a named format applies to the whole column. Each row keeps the file and line it came from.
"""
from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.importers.files import read_source
from allotrack.records.schema import TABLES, Records


@dataclass(frozen=True)
class ImportMapping:
    tables: dict[str, str] = field(default_factory=dict)
    rename: dict[str, dict[str, str]] = field(default_factory=dict)
    recode: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    encoding: str | None = None
    date_formats: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> strftime pattern

    def date_format_of(self, table: str) -> dict[str, str]:
        """Date formats of one table's date columns (column, table and file-wide settings resolved)."""
        return {c.name: f for c in TABLES[table].columns if c.kind == "date"
                and (f := self.date_formats.get(table, {}).get(c.name) or self.date_formats.get(table, {}).get("*")
                     or self.date_formats.get("*", {}).get("*"))}  # fmt: skip


_TABLE_KEYS = {"rename", "recode", "date_format", "date_formats"}


def load_mapping(path: str | Path | None) -> ImportMapping:
    if path is None:
        return ImportMapping()
    try:
        raw: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"cannot read the mapping file {Path(path).name}: {err}", table="mapping") from err
    tables = {str(k): str(v) for k, v in raw.pop("tables", {}).items()}
    encoding = raw.pop("encoding", None)
    formats: dict[str, dict[str, str]] = {}
    if "date_format" in raw:
        formats["*"] = {"*": _format(raw.pop("date_format"), "date_format")}
    for target in tables.values():
        if target not in TABLES:
            raise InputError(f"mapping sends a source to unknown table {target!r}; tables are {list(TABLES)}",
                             table="mapping")  # fmt: skip
    rename, recode = {}, {}
    for table, spec in raw.items():
        if table not in TABLES or not isinstance(spec, dict):
            raise InputError(f"mapping section [{table}] is not a table; tables are {list(TABLES)}", table="mapping")
        unknown = set(spec) - _TABLE_KEYS
        if unknown:
            raise InputError(f"mapping section [{table}] has unknown key(s) {sorted(unknown)}; use "
                             f"{sorted(_TABLE_KEYS)}", table="mapping")  # fmt: skip
        rename[table] = {str(k): str(v) for k, v in spec.get("rename", {}).items()}
        recode[table] = {str(c): {str(k): str(v) for k, v in m.items()} for c, m in spec.get("recode", {}).items()}
        table_formats = {str(c): _format(f, f"{table}.date_formats.{c}")
                         for c, f in spec.get("date_formats", {}).items()}  # fmt: skip
        for column in table_formats:
            if column not in {c.name for c in TABLES[table].columns if c.kind == "date"}:
                raise InputError(f"mapping [{table}.date_formats] names {column!r}, which is not a date column",
                                 table="mapping")  # fmt: skip
        if "date_format" in spec:
            table_formats["*"] = _format(spec["date_format"], f"{table}.date_format")
        if table_formats:
            formats[table] = table_formats
    return ImportMapping(tables, rename, recode, None if encoding is None else str(encoding), formats)


def _format(value: Any, key: str) -> str:
    """A strftime pattern that names a day, month and year (checked on a known date, so typos show at once)."""
    text = str(value)
    probe = datetime(2001, 3, 4)
    try:
        ok = datetime.strptime(probe.strftime(text), text) == probe
    except ValueError:
        ok = False
    if not ok:
        raise InputError(f"mapping {key} = {text!r} is not a date format naming day, month and year "
                         "(e.g. \"%d/%m/%Y\")", table="mapping")  # fmt: skip
    return text


def read_tables(paths: Sequence[str | Path], mapping: ImportMapping | str | Path | None = None) -> Records:
    """Read files into records: each CSV file (or sheet) is the table its name (or the mapping) says. Each row
    keeps its file and line (``Records.origins``); the mapping's date formats travel with the records."""
    m = mapping if isinstance(mapping, ImportMapping) else load_mapping(mapping)
    frames: dict[str, list[pd.DataFrame]] = {}
    origins: dict[str, list[pd.DataFrame]] = {}
    warnings: list[str] = []
    for p in paths:
        path = Path(p)
        sources, notes = read_source(path, m.encoding)
        warnings.extend(notes)
        for source in sources:
            table = m.tables.get(source.name, source.name)
            if table not in TABLES:
                raise InputError(
                    f"'{source.name}' in {path.name} is not a record table (tables: {list(TABLES)}); "
                    "rename it or map it in the [tables] section of a mapping file",
                    table=source.name,
                )
            frame = source.frame.rename(columns=m.rename.get(table, {}))
            for column, codes in m.recode.get(table, {}).items():
                if column in frame.columns:
                    frame[column] = frame[column].map(lambda v, codes=codes: codes.get(v, v))
            frames.setdefault(table, []).append(frame)
            origins.setdefault(table, []).append(pd.DataFrame({
                "file": pd.Categorical([source.label] * len(frame)), "line": source.lines}))  # fmt: skip
    tables = {t: f[0] if len(f) == 1 else pd.concat(f, ignore_index=True) for t, f in frames.items()}
    where = {t: o[0] if len(o) == 1 else pd.concat(o, ignore_index=True) for t, o in origins.items()}
    formats = {t: f for t in TABLES if (f := m.date_format_of(t))}
    return Records(tables, where, formats, tuple(warnings))
