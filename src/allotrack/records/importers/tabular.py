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

    [wide."cytokines"]       # file stem or sheet name of a wide file (one column per item and visit)
    visit_column = "visit"   # optional: each row's visit label (default: a column named visit, if any)
    date_column = "date"     # optional: each row's date (default: a column named date, if any)
    units = { il6 = "ng/L" } # optional: the unit of an item's columns, when not the dictionary's
    [wide."cytokines".visits]  # optional: column suffix -> visit label (il6_day0 -> item il6 at "day 0")
    day0 = "day 0"

Every value is read as text (validation parses dates and numbers and reports what it cannot parse), so nothing
is silently converted on the way in; dates must be ISO 8601 (``YYYY-MM-DD``) unless a format is named here, and
a named format applies to the whole column. Each row keeps the file and line it came from. A source named in
``[wide]`` is reshaped through the data dictionary to observations, assessments and attributes
(:mod:`allotrack.records.importers.wide`); renames and recodes do not apply to it, the date formats of the
tables its rows go to do.
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
from allotrack.records.dictionary import DataDictionary, default_dictionary
from allotrack.records.importers.files import ReadProgress, read_source
from allotrack.records.importers.wide import WideLayout, reshape_wide
from allotrack.records.retired import KIND_OF_RETIRED
from allotrack.records.retired import to_kinds_checked as retired_to_kinds
from allotrack.records.schema import RETIRED_TABLES, TABLES, Records, table_spec


@dataclass(frozen=True)
class ImportMapping:
    tables: dict[str, str] = field(default_factory=dict)
    rename: dict[str, dict[str, str]] = field(default_factory=dict)
    recode: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    encoding: str | None = None
    date_formats: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> strftime pattern
    wide: dict[str, WideLayout] = field(default_factory=dict)  # source (file stem or sheet) -> its wide layout

    def date_format_of(self, table: str) -> dict[str, str]:
        """Date formats of one table's date columns (column, table and file-wide settings resolved)."""
        return {c.name: f for c in table_spec(table).columns if c.kind == "date"
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
    wide_sections = raw.pop("wide", {})
    if not isinstance(wide_sections, dict):
        raise InputError('mapping [wide] must hold one section per source, e.g. [wide."cytokines"]', table="mapping")
    wide = {str(name): WideLayout.from_toml(str(name), spec) for name, spec in wide_sections.items()}
    if both := sorted(set(wide) & set(tables)):
        raise InputError(f"mapping names {', '.join(both)} both in [tables] and in [wide]: a source is a table or "
                         "a wide file", table="mapping")  # fmt: skip
    formats: dict[str, dict[str, str]] = {}
    if "date_format" in raw:
        formats["*"] = {"*": _format(raw.pop("date_format"), "date_format")}
    for target in tables.values():
        if target not in TABLES and target not in RETIRED_TABLES:
            raise InputError(f"mapping sends a source to unknown table {target!r}; tables are {list(TABLES)}",
                             table="mapping")  # fmt: skip
    rename, recode = {}, {}
    for table, spec in raw.items():
        if (table not in TABLES and table not in RETIRED_TABLES) or not isinstance(spec, dict):
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
            if column not in {c.name for c in table_spec(table).columns if c.kind == "date"}:
                raise InputError(f"mapping [{table}.date_formats] names {column!r}, which is not a date column",
                                 table="mapping")  # fmt: skip
        if "date_format" in spec:
            table_formats["*"] = _format(spec["date_format"], f"{table}.date_format")
        if table_formats:
            formats[table] = table_formats
    return ImportMapping(tables, rename, recode, None if encoding is None else str(encoding), formats, wide)


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


def read_tables(paths: Sequence[str | Path], mapping: ImportMapping | str | Path | None = None,
                dictionary: DataDictionary | None = None, progress: ReadProgress | None = None,
                max_rows: int | None = None) -> Records:  # fmt: skip
    """Read files into records: each CSV file (or sheet) is the table its name (or the mapping) says, or, when the
    mapping's ``[wide]`` section names it, is reshaped through ``dictionary`` (default: allotrack's bundled one) to
    the dictionary-driven tables. Each row keeps its file and line (``Records.origins``); the mapping's date
    formats travel with the records. ``progress`` is told each file and the rows read; a CSV file with more than
    ``max_rows`` rows is refused while it is read."""
    m = mapping if isinstance(mapping, ImportMapping) else load_mapping(mapping)
    frames: dict[str, list[pd.DataFrame]] = {}
    origins: dict[str, list[pd.DataFrame]] = {}
    warnings: list[str] = []
    for index, p in enumerate(paths, start=1):
        path = Path(p)
        if progress is not None:
            progress.file(index, len(paths), path.name)
        sources, notes = read_source(path, m.encoding, progress, max_rows)
        warnings.extend(notes)
        for source in sources:
            if source.name in m.wide:
                layout = m.wide[source.name]
                items = default_dictionary() if dictionary is None else dictionary
                long, where = reshape_wide(source.frame, items, source_label=source.label, lines=source.lines,
                                           visit_column=layout.visit_column, date_column=layout.date_column,
                                           visits=layout.visits, units=layout.units)  # fmt: skip
                for name in long:
                    frames.setdefault(name, []).append(long[name])
                    origins.setdefault(name, []).append(where[name])
                continue
            table = m.tables.get(source.name, source.name)
            if table not in TABLES and table not in RETIRED_TABLES:
                raise InputError(
                    f"'{source.name}' in {path.name} is not a record table (tables: {list(TABLES)}); "
                    "rename it or map it in the [tables] section of a mapping file",
                    table=source.name,
                )
            frame = source.frame.rename(columns=m.rename.get(table, {}))
            for column, codes in m.recode.get(table, {}).items():
                if column in frame.columns:
                    frame[column] = frame[column].map(lambda v, codes=codes: codes.get(v, v))
            if table in RETIRED_TABLES:
                retired, (table, frame) = table, retired_to_kinds(table, frame, source.label)
                warnings.append(f"{source.label}: the {retired} table is retired; its {len(frame)} row(s) were read "
                                f"as {table}")  # fmt: skip
            frames.setdefault(table, []).append(frame)
            origins.setdefault(table, []).append(pd.DataFrame({
                "file": pd.Categorical([source.label] * len(frame)), "line": source.lines}))  # fmt: skip
    tables = {t: f[0] if len(f) == 1 else pd.concat(f, ignore_index=True) for t, f in frames.items()}
    where = {t: o[0] if len(o) == 1 else pd.concat(o, ignore_index=True) for t, o in origins.items()}
    formats = {t: f for t in TABLES if (f := m.date_format_of(t))}
    for old, kind in KIND_OF_RETIRED.items():  # a retired table's date format is its rows' kind's
        if old_format := m.date_format_of(old):
            formats[kind] = {**formats.get(kind, {}), **old_format}
    return Records(tables, where, formats, tuple(warnings))
