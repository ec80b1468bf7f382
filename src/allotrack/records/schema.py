"""The record tables of a study and their columns: one documented definition, used by validation, the store
and the importers. Dates are calendar dates; every table except ``patients`` and ``donors`` links to a patient.
Several donors per patient and many courses, infusions and assessments per patient are normal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id, text, date, number, integer, choice, bool
    required: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    references: str | None = None  # "table.column" this value must exist in
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    key: str | None
    columns: tuple[Column, ...]
    doc: str = ""

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _pid() -> Column:
    return Column("patient_id", "id", True, references="patients.patient_id")


SEX = ("F", "M")
PRODUCTS = ("G-PBSC", "NK", "IMAK", "MSC", "DLI", "HSCT")
COURSE_KINDS = ("induction", "consolidation", "conditioning", "maintenance", "salvage", "other")
RESPONSES = ("CR", "CRh", "CRi", "MLFS", "PR", "no response", "non-evaluable", "sCR", "VGPR", "MR", "SD", "PD")
REMISSIONS = ("CR", "CRh", "CRi", "sCR")
# (table, column) of every clinical event date other than diagnosis, death and last contact
EVENT_DATES = (("courses", "start_date"), ("infusions", "date"), ("labs", "date"), ("chimerism", "date"),
               ("gvhd", "date"), ("crs", "date"), ("responses", "date"), ("relapses", "date"),
               ("adverse_events", "start_date"))  # fmt: skip

TABLES: Mapping[str, Table] = {
    t.name: t
    for t in (
        Table("patients", "patient_id", (
            Column("patient_id", "id", True), Column("centre", "text"), Column("sex", "choice", True, SEX),
            Column("birth_date", "date"), Column("age_at_diagnosis", "number", low=0, high=120),
            Column("diagnosis", "text", True), Column("diagnosis_date", "date", True), Column("subtype", "text"),
            Column("randomization_date", "date"), Column("arm", "text"),
            Column("eln2022_risk", "choice", choices=("favorable", "intermediate", "adverse")),
            Column("hct_ci", "integer", low=0, high=30), Column("ecog", "integer", low=0, high=5),
        ), "One row per patient."),
        Table("donors", "donor_id", (
            Column("donor_id", "id", True), _pid(),
            Column("relation", "choice", True, ("sibling", "child", "parent", "other related", "unrelated", "cord")),
            Column("sex", "choice", False, SEX), Column("birth_date", "date"),
            Column("age", "number", low=0, high=100),
            Column("hla_mismatches", "integer", low=0, high=12), Column("hla_out_of", "integer", low=6, high=12),
            Column("cmv", "choice", choices=("positive", "negative")), Column("abo", "text"),
        ), "Donors; several per patient are normal."),
        Table("courses", "course_id", (
            Column("course_id", "id", True), _pid(), Column("number", "integer", True, low=1, high=100),
            Column("kind", "choice", True, COURSE_KINDS), Column("regimen", "text"),
            Column("start_date", "date", True), Column("end_date", "date"),
        ), "Treatment courses (chemotherapy, conditioning)."),
        Table("infusions", "infusion_id", (
            Column("infusion_id", "id", True), _pid(), Column("course_id", "id", references="courses.course_id"),
            Column("donor_id", "id", references="donors.donor_id"), Column("date", "date", True),
            Column("product", "choice", True, PRODUCTS), Column("mnc_per_kg", "number", low=0),
            Column("cd34_per_kg", "number", low=0), Column("cd3_per_kg", "number", low=0),
            Column("nk_per_kg", "number", low=0),
        ), "Cell infusions; doses per kg in the units the study states (e.g. CD34+ x10^6/kg)."),
        Table("labs", None, (
            _pid(), Column("date", "date", True),
            Column("analyte", "choice", True, ("ANC", "PLT", "WBC", "HB", "BILI")),
            Column("value", "number", True, low=0), Column("unit", "text", True),
            Column("transfused", "bool"),
        ), "Laboratory values (ANC and platelets in 10^9/L)."),
        Table("chimerism", None, (
            _pid(), Column("date", "date", True), Column("donor_percent", "number", True, low=0, high=100),
            Column("assay", "choice", True, ("STR", "qPCR", "XY-FISH", "NGS", "other")),
            Column("lineage", "text"), Column("lod_percent", "number", low=0, high=100),
            Column("below_lod", "bool"),
        )),
        Table("gvhd", None, (
            _pid(), Column("date", "date", True), Column("kind", "choice", True, ("acute", "chronic")),
            Column("grade", "integer", low=0, high=4),
            Column("severity", "choice", choices=("mild", "moderate", "severe")),
            Column("systemic_therapy", "bool"),
        ), "GVHD assessments (acute: MAGIC grade 0-4; chronic: NIH severity)."),
        Table("crs", None, (_pid(), Column("date", "date", True), Column("grade", "integer", True, low=0, high=5))),
        Table("responses", None, (
            _pid(), Column("date", "date", True), Column("category", "choice", True, RESPONSES),
            Column("mrd_negative", "bool"),
        )),
        Table("adverse_events", None, (
            _pid(), Column("start_date", "date", True), Column("term", "text", True), Column("soc", "text", True),
            Column("grade", "integer", low=1, high=5),
        )),
        Table("relapses", None, (
            _pid(), Column("date", "date", True),
            Column("kind", "choice", choices=("hematologic", "molecular", "extramedullary", "progression")),
        ), "Relapse or progression events."),
        Table("deaths", "patient_id", (
            _pid(), Column("date", "date", True), Column("cause", "text"),
        ), "At most one row per patient."),
        Table("follow_up", "patient_id", (
            _pid(), Column("last_contact_date", "date", True), Column("last_disease_assessment", "date"),
        ), "Date last known alive (and last disease assessment)."),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Records:
    """A study's records: one DataFrame per table (missing tables are empty)."""

    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}")
        frame = self.tables.get(name)
        if frame is None:
            return pd.DataFrame({c.name: pd.Series(dtype=_dtype(c)) for c in TABLES[name].columns})
        return frame

    @classmethod
    def from_frames(cls, **frames: Any) -> Records:
        unknown = set(frames) - set(TABLES)
        if unknown:
            raise KeyError(f"unknown table(s) {sorted(unknown)}")
        return cls({k: v if isinstance(v, pd.DataFrame) else pd.DataFrame(v) for k, v in frames.items()})


def _dtype(column: Column) -> str:
    return {"date": "datetime64[ns]", "number": "float64", "integer": "float64", "bool": "boolean"}.get(
        column.kind, "object"
    )
