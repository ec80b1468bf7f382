"""REDCap exports: the records CSV (raw codes, with ``redcap_repeat_instrument`` / ``redcap_repeat_instance`` and
``redcap_event_name`` for longitudinal projects) plus the data dictionary.

Each instrument (form) becomes a record table: non-repeating fields of a record go to the table the mapping's
``[tables]`` section names for their form (default: the form name itself), repeating instruments give one row
per instance. Choice fields are decoded to their labels with the dictionary ("1, Male | 2, Female"), then the
mapping's renames and recodes apply as for CSV files. The record id column becomes ``patient_id``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.importers.files import SourceTable, read_source
from allotrack.records.importers.tabular import ImportMapping, load_mapping
from allotrack.records.retired import to_kinds_checked
from allotrack.records.schema import RETIRED_TABLES, TABLES, Records

_META = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance", "redcap_data_access_group")


def _choices(text: str) -> dict[str, str]:
    out = {}
    for part in str(text).split("|"):
        if "," in part:
            code, label = part.split(",", 1)
            out[code.strip()] = label.strip()
    return out


def read_redcap(
    records_csv: str | Path, dictionary_csv: str | Path, mapping: ImportMapping | str | Path | None = None
) -> Records:
    """Read a REDCap raw export and its data dictionary into record tables."""
    m = mapping if isinstance(mapping, ImportMapping) else load_mapping(mapping)
    records_source = _one_table(Path(records_csv), m.encoding)
    data, lines = records_source.frame, records_source.lines
    dd = _one_table(Path(dictionary_csv), m.encoding).frame
    field_col = next((c for c in dd.columns if c.lower().startswith("variable") or c.lower() == "field_name"), None)
    form_col = next((c for c in dd.columns if c.lower().startswith("form")), None)
    type_col = next((c for c in dd.columns if c.lower().startswith("field type") or c.lower() == "field_type"), None)
    choice_col = next((c for c in dd.columns if c.lower().startswith("choices")), None)
    if not (field_col and form_col and type_col):
        raise InputError("the data dictionary needs Variable / Field Name, Form Name and Field Type columns",
                         table="redcap dictionary")  # fmt: skip
    id_field = str(dd[field_col].iloc[0])
    if id_field not in data.columns:
        raise InputError(f"the records file lacks the record id field '{id_field}'", table="redcap records")
    for _, row in dd.iterrows():
        name = str(row[field_col])
        if name in data.columns and str(row[type_col]) in ("radio", "dropdown", "yesno") and choice_col:
            codes = {"1": "yes", "0": "no"} if row[type_col] == "yesno" else _choices(row[choice_col] or "")
            data[name] = data[name].map(lambda v, codes=codes: codes.get(v, v) if isinstance(v, str) else v)
    repeat = data["redcap_repeat_instrument"] if "redcap_repeat_instrument" in data.columns else None
    frames: dict[str, pd.DataFrame] = {}
    origins: dict[str, pd.DataFrame] = {}
    for form, fields in dd.groupby(form_col, sort=False)[field_col]:
        table = m.tables.get(str(form), str(form))
        cols = [f for f in fields if f in data.columns and f != id_field]
        if not cols:
            continue
        if table not in TABLES and table not in RETIRED_TABLES:
            raise InputError(f"REDCap form '{form}' is not a record table; map it in the mapping's [tables] section",
                             table=str(form))  # fmt: skip
        rows = data if repeat is None else data[(repeat.fillna("") == form) | (repeat.fillna("") == "")]
        frame = rows[[id_field, *cols]].rename(columns={id_field: "patient_id"})
        frame = frame.dropna(how="all", subset=cols)
        frame = frame.rename(columns=m.rename.get(table, {}))
        for column, codes in m.recode.get(table, {}).items():
            if column in frame.columns:
                frame[column] = frame[column].map(lambda v, codes=codes: codes.get(v, v))
        if table in RETIRED_TABLES:
            table, frame = to_kinds_checked(table, frame, records_source.label)
        origin = pd.DataFrame({"file": pd.Categorical([records_source.label] * len(frame)),
                               "line": lines[frame.index.to_numpy()]})  # fmt: skip
        frames[table] = pd.concat([frames[table], frame], ignore_index=True) if table in frames else frame
        origins[table] = pd.concat([origins[table], origin], ignore_index=True) if table in origins else origin
    frames = {t: f.reset_index(drop=True) for t, f in frames.items()}
    return Records(frames, origins, {t: f for t in TABLES if (f := m.date_format_of(t))})


def _one_table(path: Path, encoding: str | None) -> SourceTable:
    if path.suffix.lower() != ".csv":
        raise InputError(f"{path.name}: REDCap exports are read as CSV files", table="redcap")
    tables, _ = read_source(path, encoding)
    return tables[0]
