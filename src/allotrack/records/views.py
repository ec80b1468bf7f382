"""Typed views of the long record kinds in the shape the clinical rules read them: blood counts by analyte and day,
donor chimerism per assay and lineage, GVHD by kind, CRS grades and disease responses. Each view is computed from
``observations`` or ``assessments`` (nothing is stored twice) and has fixed columns and dtypes, empty or not.

Rows dated only by a visit label are not in the views (the rules count days from dated events). The mapping from
items to views is the one of :mod:`allotrack.records.retired`; disease responses also read the criteria-specific
items ``response_eln`` and ``response_imwg`` (ELN "NR" is "no response", "CR_MRDneg" is CR with
``mrd_negative``; an ELN "relapse" is a relapse, not a response, and is not shown here).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from allotrack.records.retired import CHIMERISM_ITEM, COUNT_ITEMS, CRS_ITEM, GVHD_ITEMS, RESPONSE_ITEM
from allotrack.records.schema import Records

ANALYTE_OF_ITEM = {item: analyte for analyte, item in COUNT_ITEMS.items()}
KIND_OF_GVHD_ITEM = {item: kind for kind, item in GVHD_ITEMS.items()}
RESPONSE_ITEMS: dict[str, dict[str, str | None]] = {
    RESPONSE_ITEM: {"NR": "no response", "NE": "non-evaluable"}, "response_imwg": {},
    "response_eln": {"NR": "no response", "CR_MRDneg": "CR", "relapse": None}}  # fmt: skip


def counts(records: Records, analytes: tuple[str, ...] = tuple(COUNT_ITEMS)) -> pd.DataFrame:
    """Blood counts and chemistry (ANC, PLT, WBC, HB, BILI) as ``patient_id, date, analyte, value, unit,
    transfused``, in the dictionary's units (10^9/L for counts, g/dL, mg/dL)."""
    obs = _dated(records["observations"], [COUNT_ITEMS[a] for a in analytes])
    return pd.DataFrame({
        "patient_id": obs["patient_id"], "date": obs["date"],
        "analyte": obs["item"].map(ANALYTE_OF_ITEM).astype(object), "value": obs["value"].astype("float64"),
        "unit": obs["unit"], "transfused": obs["transfused"].astype("boolean"),
    }).reset_index(drop=True)  # fmt: skip


def chimerism(records: Records) -> pd.DataFrame:
    """Donor chimerism as ``patient_id, date, donor_percent, assay, lineage, lod_percent, below_lod``."""
    obs = _dated(records["observations"], [CHIMERISM_ITEM])
    return pd.DataFrame({
        "patient_id": obs["patient_id"], "date": obs["date"], "donor_percent": obs["value"].astype("float64"),
        "assay": obs["method"], "lineage": obs["specimen"], "lod_percent": obs["lod"].astype("float64"),
        "below_lod": obs["below_lod"].astype("boolean"),
    }).reset_index(drop=True)  # fmt: skip


def gvhd(records: Records) -> pd.DataFrame:
    """GVHD as ``patient_id, date, kind (acute/chronic), grade (MAGIC 0-4), severity (NIH), systemic_therapy``."""
    rows = _dated(records["assessments"], list(KIND_OF_GVHD_ITEM))
    kind = rows["item"].map(KIND_OF_GVHD_ITEM).astype(object)
    inputs = _inputs(rows)
    acute = (kind == "acute").to_numpy()
    grade = np.where(acute, pd.to_numeric(rows["value_text"], errors="coerce"), _field(inputs, "grade", float))
    severity = np.where(acute, _field(inputs, "severity", str), rows["value_text"].to_numpy(dtype=object))
    return pd.DataFrame({
        "patient_id": rows["patient_id"], "date": rows["date"], "kind": kind,
        "grade": pd.Series(grade, index=rows.index, dtype="float64"),
        "severity": pd.Series(severity, index=rows.index, dtype=object),
        "systemic_therapy": pd.Series(_field(inputs, "systemic_therapy", bool), index=rows.index, dtype="boolean"),
    }).reset_index(drop=True)  # fmt: skip


def crs(records: Records) -> pd.DataFrame:
    """CRS grades (ASTCT) as ``patient_id, date, grade``."""
    rows = _dated(records["assessments"], [CRS_ITEM])
    return pd.DataFrame({"patient_id": rows["patient_id"], "date": rows["date"],
                         "grade": pd.to_numeric(rows["value_text"], errors="coerce").astype("float64")}).reset_index(
        drop=True)  # fmt: skip


def responses(records: Records) -> pd.DataFrame:
    """Disease responses as ``patient_id, date, category, mrd_negative`` (categories of
    :data:`allotrack.records.schema.RESPONSES`)."""
    rows = _dated(records["assessments"], list(RESPONSE_ITEMS))
    category = rows["value_text"].to_numpy(dtype=object).copy()
    mrd = _field(_inputs(rows), "mrd_negative", bool)
    for item, renamed in RESPONSE_ITEMS.items():
        mine = (rows["item"] == item).to_numpy()
        for code, legacy in renamed.items():
            hit = mine & (category == code)
            if code == "CR_MRDneg":
                mrd[hit] = True
            category[hit] = legacy
    frame = pd.DataFrame({"patient_id": rows["patient_id"], "date": rows["date"],
                          "category": pd.Series(category, index=rows.index, dtype=object),
                          "mrd_negative": pd.Series(mrd, index=rows.index, dtype="boolean")})  # fmt: skip
    return frame[frame["category"].notna()].reset_index(drop=True)


def _dated(frame: pd.DataFrame, items: list[str]) -> pd.DataFrame:
    """The rows of the items that have a date, in stored order."""
    return frame[frame["item"].isin(items) & frame["date"].notna()]


def _inputs(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The ``inputs`` JSON of each row as a dict (empty when missing or not an object)."""
    out: list[dict[str, Any]] = []
    for text in rows["inputs"].tolist():
        try:
            value = json.loads(text) if isinstance(text, str) else {}
        except json.JSONDecodeError:
            value = {}
        out.append(value if isinstance(value, dict) else {})
    return out


def _field(inputs: list[dict[str, Any]], key: str, kind: type) -> np.ndarray:
    values = [d.get(key) for d in inputs]
    if kind is float:
        return np.array([float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                         for v in values], dtype="float64")  # fmt: skip
    if kind is bool:
        return np.array([v if isinstance(v, bool) else None for v in values], dtype=object)
    return np.array([v if isinstance(v, str) else None for v in values], dtype=object)
