"""Rows of the tables retired by migration 0007 (labs, chimerism, gvhd, crs, responses) as rows of the record kinds
that replaced them: one output row per input row, in the same order and with the same index, so that a problem
found later still names the file line the row was read from.

The mapping (also what migration 0007 does to stored rows):

=============  =============  ==================================================================================
retired table  record kind    item and columns
=============  =============  ==================================================================================
labs           observations   ``analyte`` ANC/PLT/WBC/HB/BILI → item anc/plt/wbc/hb/bili; value, unit,
                              transfused
chimerism      observations   item ``chimerism_pct``: donor_percent → value (unit %), assay → method,
                              lineage → specimen, lod_percent → lod, below_lod
gvhd           assessments    acute → item ``agvhd_grade`` (grade → the choice code); chronic → item
                              ``cgvhd_severity`` (severity → the choice code)
crs            assessments    item ``crs_grade`` (grade → the choice code)
responses      assessments    item ``disease_response`` (category → the choice code)
=============  =============  ==================================================================================

A retired column the new row has no column for (``systemic_therapy``, ``mrd_negative``, an acute row's severity or
a chronic row's grade) is kept, when given, in the assessment's ``inputs`` (JSON), which is where an assessment
keeps what its result was derived from; :mod:`allotrack.records.views` reads it back. Nothing is dropped.

Values may be text (rows read from a file, before typing) or typed (rows read from a store).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

COUNT_ITEMS = {"ANC": "anc", "PLT": "plt", "WBC": "wbc", "HB": "hb", "BILI": "bili"}
GVHD_ITEMS = {"acute": "agvhd_grade", "chronic": "cgvhd_severity"}
CHIMERISM_ITEM = "chimerism_pct"
CRS_ITEM = "crs_grade"
RESPONSE_ITEM = "disease_response"
KIND_OF_RETIRED = {"labs": "observations", "chimerism": "observations", "gvhd": "assessments",
                   "crs": "assessments", "responses": "assessments"}  # fmt: skip
_YES = {"1": True, "yes": True, "y": True, "true": True, "0": False, "no": False, "n": False, "false": False}


def to_kinds(table: str, frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The record kind a retired ``table``'s rows belong to, and the rows as rows of that kind."""
    convert = {"labs": _labs, "chimerism": _chimerism, "gvhd": _gvhd, "crs": _crs, "responses": _responses}[table]
    out = convert(frame.reset_index(drop=True))
    out.index = frame.index
    return KIND_OF_RETIRED[table], out


def to_kinds_checked(table: str, frame: pd.DataFrame, source: str) -> tuple[str, pd.DataFrame]:
    """:func:`to_kinds` for rows read from a file: a column the retired table did not have is refused (it would
    otherwise be dropped unseen)."""
    from allotrack.errors import InputError
    from allotrack.records.schema import RETIRED_TABLES

    known = {c.name for c in RETIRED_TABLES[table].columns}
    unknown = [str(c) for c in frame.columns if c not in known]
    if unknown:
        raise InputError(f"{source}: column(s) {', '.join(map(repr, unknown))} are not columns of the retired "
                         f"{table} table ({', '.join(sorted(known))}); rename them, or give the rows as "
                         f"{KIND_OF_RETIRED[table]}", table=table, column=unknown[0])  # fmt: skip
    return to_kinds(table, frame)


def _get(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return frame[column].astype(object).where(frame[column].notna(), None)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _labs(frame: pd.DataFrame) -> pd.DataFrame:
    analyte = _get(frame, "analyte")
    item = analyte.map(lambda a: None if a is None else COUNT_ITEMS.get(str(a).strip().upper(), str(a).lower()))
    return pd.DataFrame({"patient_id": _get(frame, "patient_id"), "item": item, "date": _get(frame, "date"),
                         "value": _get(frame, "value"), "unit": _get(frame, "unit"),
                         "transfused": _get(frame, "transfused")})  # fmt: skip


def _chimerism(frame: pd.DataFrame) -> pd.DataFrame:
    n = len(frame)
    return pd.DataFrame({"patient_id": _get(frame, "patient_id"), "item": [CHIMERISM_ITEM] * n,
                         "date": _get(frame, "date"), "value": _get(frame, "donor_percent"), "unit": ["%"] * n,
                         "method": _get(frame, "assay"), "specimen": _get(frame, "lineage"),
                         "lod": _get(frame, "lod_percent"), "below_lod": _get(frame, "below_lod")})  # fmt: skip


def _gvhd(frame: pd.DataFrame) -> pd.DataFrame:
    kind = _get(frame, "kind")
    grade, severity, therapy = _get(frame, "grade"), _get(frame, "severity"), _get(frame, "systemic_therapy")
    chronic = (kind.map(lambda k: str(k).strip().lower() if k is not None else None) == "chronic").to_numpy()
    item = kind.map(lambda k: None if k is None else GVHD_ITEMS.get(str(k).strip().lower(), str(k)))
    value = np.where(chronic, severity.to_numpy(dtype=object), grade.map(choice_code).to_numpy(dtype=object))
    inputs = [_inputs(systemic_therapy=_flag(t), **({"grade": _number(g)} if c else {"severity": s}))
              for t, g, s, c in zip(therapy, grade, severity, chronic, strict=True)]  # fmt: skip
    return _assessments(frame, item, pd.Series(value, index=frame.index, dtype=object), inputs)


def _crs(frame: pd.DataFrame) -> pd.DataFrame:
    item = pd.Series([CRS_ITEM] * len(frame), index=frame.index, dtype=object)
    return _assessments(frame, item, _get(frame, "grade").map(choice_code), [None] * len(frame))


def _responses(frame: pd.DataFrame) -> pd.DataFrame:
    item = pd.Series([RESPONSE_ITEM] * len(frame), index=frame.index, dtype=object)
    inputs = [_inputs(mrd_negative=_flag(m)) for m in _get(frame, "mrd_negative")]
    return _assessments(frame, item, _get(frame, "category"), inputs)


def _assessments(frame: pd.DataFrame, item: pd.Series, value_text: pd.Series,
                 inputs: list[str | None]) -> pd.DataFrame:  # fmt: skip
    return pd.DataFrame({"patient_id": _get(frame, "patient_id"), "item": item, "date": _get(frame, "date"),
                         "value_text": value_text,
                         "inputs": pd.Series(inputs, index=frame.index, dtype=object)})  # fmt: skip


def choice_code(value: Any) -> str | None:
    """A grade as its choice code: 3, 3.0, "3" and "3.0" are all "3"; other text is kept as given."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(value)


def _number(value: Any) -> float | str | None:
    code = choice_code(value)
    try:
        return None if code is None else float(code)
    except ValueError:
        return code


def _flag(value: Any) -> bool | str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return _YES.get(str(value).strip().lower(), str(value))


def _inputs(**values: Any) -> str | None:
    given = {k: v for k, v in values.items() if v is not None}
    return json.dumps(given, sort_keys=True) if given else None
