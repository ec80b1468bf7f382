"""Read record tables from CSV, Excel or statistical-package files, applying a mapping.

Mapping file (TOML)::

    [tables]                 # file stem or sheet name -> table
    "Baseline" = "patients"

    [patients.rename]        # source column -> schema column
    "Patient ID" = "patient_id"

    [patients.recode.sex]    # value recoding per column
    "male" = "M"
    "female" = "F"

Every value is read as text (validation parses dates and numbers and reports what it cannot parse), so nothing
is silently converted on the way in.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.schema import TABLES, Records


@dataclass(frozen=True)
class ImportMapping:
    tables: dict[str, str] = field(default_factory=dict)
    rename: dict[str, dict[str, str]] = field(default_factory=dict)
    recode: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def load_mapping(path: str | Path | None) -> ImportMapping:
    if path is None:
        return ImportMapping()
    try:
        raw: dict[str, Any] = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"cannot read the mapping file: {err}", table="mapping") from err
    tables = {str(k): str(v) for k, v in raw.pop("tables", {}).items()}
    for target in tables.values():
        if target not in TABLES:
            raise InputError(f"mapping sends a source to unknown table {target!r}; tables are {list(TABLES)}",
                             table="mapping")  # fmt: skip
    rename, recode = {}, {}
    for table, spec in raw.items():
        if table not in TABLES:
            raise InputError(f"mapping section [{table}] is not a table; tables are {list(TABLES)}", table="mapping")
        rename[table] = {str(k): str(v) for k, v in spec.get("rename", {}).items()}
        recode[table] = {str(c): {str(k): str(v) for k, v in m.items()} for c, m in spec.get("recode", {}).items()}
    return ImportMapping(tables, rename, recode)


def _sources(path: Path) -> list[tuple[str, pd.DataFrame]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [(path.stem, pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))]
    if suffix in (".xlsx", ".xlsm"):
        sheets = pd.read_excel(path, sheet_name=None, dtype=str)
        return list(sheets.items())
    if suffix in (".sav", ".dta", ".sas7bdat", ".xpt"):
        try:
            import pyreadstat
        except ImportError as err:
            raise InputError("reading SPSS/Stata/SAS files needs pyreadstat: pip install pyreadstat") from err
        reader = {".sav": pyreadstat.read_sav, ".dta": pyreadstat.read_dta, ".sas7bdat": pyreadstat.read_sas7bdat,
                  ".xpt": pyreadstat.read_xport}[suffix]  # fmt: skip
        frame, _ = reader(str(path))
        return [(path.stem, frame.astype("string").astype(object))]
    raise InputError(f"cannot read {path.name}: use .csv, .xlsx, .sav, .dta, .sas7bdat or .xpt")


def read_tables(paths: Sequence[str | Path], mapping: ImportMapping | str | Path | None = None) -> Records:
    """Read files into records: each CSV file (or sheet) is the table its name (or the mapping) says."""
    m = mapping if isinstance(mapping, ImportMapping) else load_mapping(mapping)
    frames: dict[str, pd.DataFrame] = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(f"no such file: {path}")
        for source, frame in _sources(path):
            table = m.tables.get(source, source)
            if table not in TABLES:
                raise InputError(
                    f"'{source}' in {path.name} is not a record table (tables: {list(TABLES)}); "
                    "rename it or map it in the [tables] section of a mapping file",
                    table=source,
                )
            frame = frame.rename(columns=m.rename.get(table, {}))
            for column, codes in m.recode.get(table, {}).items():
                if column in frame.columns:
                    frame[column] = frame[column].map(lambda v, codes=codes: codes.get(v, v))
            frame = frame.dropna(how="all")
            frames[table] = pd.concat([frames[table], frame], ignore_index=True) if table in frames else frame
    return Records(frames)
