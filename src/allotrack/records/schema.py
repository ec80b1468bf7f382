"""The record tables of a study and their columns: one documented definition, used by validation, the store
and the importers. Dates are calendar dates; every table except ``patients`` and ``donors`` links to a patient.
Several donors per patient and many courses, infusions and assessments per patient are normal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id, text, note (long text), date, number, integer, choice, bool
    required: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    references: str | None = None  # "table.column" this value must exist in
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """A record table. ``key`` is its identifier column (None for event tables); ``natural_key`` the columns that
    identify one record (SDTM's natural key): a second row with the same natural key is a correction of the first,
    never a second record. The store enforces it with a unique index on the current (not deleted) rows; a
    natural key without ``patient_id`` (donor, course and infusion ids) is unique across patients."""

    name: str
    key: str | None
    columns: tuple[Column, ...]
    doc: str = ""
    natural_key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.natural_key:
            object.__setattr__(self, "natural_key", (self.key,) if self.key else ("patient_id",))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def global_key(self) -> bool:
        """True when the natural key is an identifier unique across patients (donor, course, infusion ids)."""
        return "patient_id" not in self.natural_key


def _pid() -> Column:
    return Column("patient_id", "id", True, references="patients.patient_id")


SEX = ("F", "M")
PRODUCTS = ("G-PBSC", "NK", "IMAK", "MSC", "DLI", "HSCT")
COURSE_KINDS = ("induction", "consolidation", "conditioning", "maintenance", "salvage", "other")
RESPONSES = ("CR", "CRh", "CRi", "MLFS", "PR", "no response", "non-evaluable", "sCR", "VGPR", "MR", "SD", "PD")
REMISSIONS = ("CR", "CRh", "CRi", "sCR")
# (table, column) of every clinical event date other than diagnosis, death and last contact
EVENT_DATES = (("courses", "start_date"), ("infusions", "date"), ("relapses", "date"), ("adverse_events", "start_date"),
               ("observations", "date"), ("interventions", "start_date"), ("assessments", "date"),
               ("enrolments", "enrolment_date"), ("enrolments", "randomisation_date"))  # fmt: skip
ROUTES = ("iv", "sc", "oral", "intrathecal", "topical", "other")
# the record kinds whose rows are described by the study's data dictionary (allotrack.records.dictionary), and the
# column naming the dictionary item of each row
DICTIONARY_TABLES = {"observations": "item", "interventions": "agent", "assessments": "item", "attributes": "item"}

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
        Table("adverse_events", None, (
            _pid(), Column("start_date", "date", True), Column("term", "text", True), Column("soc", "text", True),
            Column("grade", "integer", low=1, high=5),
        ), "Adverse events (CTCAE term, system organ class, worst grade).", ("patient_id", "start_date", "term")),
        Table("relapses", None, (
            _pid(), Column("date", "date", True),
            Column("kind", "choice", choices=("hematologic", "molecular", "extramedullary", "progression")),
        ), "Relapse or progression events.", ("patient_id", "date")),
        Table("deaths", "patient_id", (
            _pid(), Column("date", "date", True), Column("cause", "text"),
        ), "At most one row per patient."),
        Table("follow_up", "patient_id", (
            _pid(), Column("last_contact_date", "date", True), Column("last_disease_assessment", "date"),
        ), "Date last known alive (and last disease assessment)."),
        # Dictionary-driven kinds (CDISC SDTM's findings, interventions and events; REDCap's data dictionary): what a
        # row measures is an item of the study's dictionary, which gives its type, unit, range and choices.
        Table("observations", None, (
            _pid(), Column("item", "text", True), Column("date", "date"), Column("study_day", "integer"),
            Column("visit", "text"), Column("value", "number"), Column("value_text", "text"), Column("unit", "text"),
            Column("specimen", "text"), Column("method", "text"), Column("lod", "number", low=0),
            Column("below_lod", "bool"), Column("above_lod", "bool"), Column("transfused", "bool"),
            Column("reported", "text"),
        ), "Findings in long format (blood counts, chemistry, cytokines, immune subsets, M-protein, DSA MFI, donor "
           "chimerism %): one value of one dictionary item per patient, day or visit, specimen (or lineage) and "
           "method (assay); values are stored in the dictionary's unit (``reported`` keeps a converted value as it "
           "was reported); ``transfused`` marks a count taken after a transfusion (not evidence of recovery).",
           ("patient_id", "item", "date", "visit", "specimen", "method")),
        Table("interventions", None, (
            _pid(), Column("agent", "text", True), Column("start_date", "date", True), Column("end_date", "date"),
            Column("dose", "number", low=0), Column("unit", "text"), Column("per_kg", "bool"),
            Column("route", "choice", choices=ROUTES), Column("course_id", "id", references="courses.course_id"),
            Column("dose_level", "text"), Column("visit", "text"),
        ), "Drugs and cell products given (basiliximab, rituximab, IL-2, steroids, MSC, NK cells by dose level).",
           ("patient_id", "agent", "start_date")),
        Table("assessments", None, (
            _pid(), Column("item", "text", True), Column("date", "date"), Column("study_day", "integer"),
            Column("visit", "text"), Column("value", "number"), Column("value_text", "text"),
            Column("rule", "text"), Column("inputs", "note"),
        ), "Graded assessments and responses (GVHD organ stages and grade with the rule version and the raw inputs "
           "as JSON, GVHD treatment response at a named day, CRS/ICANS, disease response).",
           ("patient_id", "item", "date", "visit")),
        Table("attributes", None, (
            _pid(), Column("item", "text", True), Column("value", "number"), Column("value_text", "text"),
            Column("date", "date"),
        ), "Patient-level dictionary items (cytogenetic risk, ISS inputs, CD20 status, prior transplants).",
           ("patient_id", "item")),
        Table("enrolments", None, (
            _pid(), Column("study", "text", True), Column("enrolment_date", "date"), Column("eligible", "bool"),
            Column("arm", "text"), Column("randomisation_date", "date"), Column("stratum", "text"),
            Column("allocation_number", "integer", low=1),
        ), "Study-design record: enrolment and allocation (arm, stratum, allocation number).", ("patient_id", "study")),
        Table("populations", None, (
            _pid(), Column("study", "text", True), Column("population", "text", True),
            Column("included", "bool", True), Column("reason", "text"),
        ), "Study-design record: membership of an analysis population (ITT, per-protocol, safety...).",
           ("patient_id", "study", "population")),
        Table("matched_sets", None, (
            _pid(), Column("study", "text", True), Column("set_id", "text", True),
            Column("role", "choice", True, ("case", "control")), Column("weight", "number", low=0),
        ), "Study-design record: the matched set a patient belongs to, as case or control.", ("patient_id", "study")),
    )
}  # fmt: skip


# Tables of schema revisions 0001-0006, retired by migration 0007 (their rows are observations and assessments now;
# see allotrack.records.retired): kept so that migrations can read, and importers convert, what was written then.
RETIRED_TABLES: Mapping[str, Table] = {
    t.name: t
    for t in (
        Table("labs", None, (
            _pid(), Column("date", "date", True),
            Column("analyte", "choice", True, ("ANC", "PLT", "WBC", "HB", "BILI")),
            Column("value", "number", True, low=0), Column("unit", "text", True),
            Column("transfused", "bool"),
        ), "Laboratory values (ANC and platelets in 10^9/L); one value per analyte and day.",
          ("patient_id", "date", "analyte")),
        Table("chimerism", None, (
            _pid(), Column("date", "date", True), Column("donor_percent", "number", True, low=0, high=100),
            Column("assay", "choice", True, ("STR", "qPCR", "XY-FISH", "NGS", "other")),
            Column("lineage", "text"), Column("lod_percent", "number", low=0, high=100),
            Column("below_lod", "bool"),
        ), "Donor chimerism per assay, lineage and day.", ("patient_id", "date", "assay", "lineage")),
        Table("gvhd", None, (
            _pid(), Column("date", "date", True), Column("kind", "choice", True, ("acute", "chronic")),
            Column("grade", "integer", low=0, high=4),
            Column("severity", "choice", choices=("mild", "moderate", "severe")),
            Column("systemic_therapy", "bool"),
        ), "GVHD assessments (acute: MAGIC grade 0-4; chronic: NIH severity).",
          ("patient_id", "date", "kind")),
        Table("crs", None, (_pid(), Column("date", "date", True), Column("grade", "integer", True, low=0, high=5)),
              "CRS grade (ASTCT) per day.", ("patient_id", "date")),
        Table("responses", None, (
            _pid(), Column("date", "date", True), Column("category", "choice", True, RESPONSES),
            Column("mrd_negative", "bool"),
        ), "Disease response assessments.", ("patient_id", "date")),
    )
}  # fmt: skip


def table_spec(name: str) -> Table:
    """The definition of a record table, current or retired."""
    return TABLES[name] if name in TABLES else RETIRED_TABLES[name]


@dataclass(frozen=True)
class Records:
    """A study's records: one DataFrame per table (missing tables are empty).

    Records read from files also carry, per table, where each row came from (``origins``: a frame aligned with the
    table's rows, with columns ``file`` and ``line``, the header being line 1) so that problems name the file and
    line, and the date format the mapping file names for a column (``date_formats[table][column]``, a
    ``strftime`` pattern applied to the whole column; ISO 8601 ``YYYY-MM-DD`` otherwise), and the importer's
    warnings."""

    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    origins: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    date_formats: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the importer noticed (empty sheets, header-only files)

    def __post_init__(self) -> None:
        unknown = set(self.tables) - set(TABLES)
        if unknown:
            hint = " (retired tables are read by Records.from_frames)" if unknown & set(RETIRED_TABLES) else ""
            raise KeyError(f"unknown table(s) {sorted(unknown)}{hint}")

    def origin(self, table: str, row: int) -> tuple[str | None, int | None]:
        """(file, line) of a table's row (0-based position), or (None, None) for rows not read from a file."""
        frame = self.origins.get(table)
        if frame is None or row >= len(frame):
            return None, None
        return str(frame["file"].iloc[row]), int(frame["line"].iloc[row])

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}")
        frame = self.tables.get(name)
        if frame is None:
            return _empty(name).copy()
        return frame

    @classmethod
    def from_frames(cls, **frames: Any) -> Records:
        """Records from data frames (or anything ``pd.DataFrame`` takes), one per table. Frames of the retired
        tables (labs, chimerism, gvhd, crs, responses) are read as rows of their record kind
        (:func:`allotrack.records.retired.to_kinds`; a column the retired table did not have is refused) and
        appended to that kind's frame."""
        from allotrack.records.retired import to_kinds_checked

        unknown = set(frames) - set(TABLES) - set(RETIRED_TABLES)
        if unknown:
            raise KeyError(f"unknown table(s) {sorted(unknown)}")
        tables = {k: v if isinstance(v, pd.DataFrame) else pd.DataFrame(v) for k, v in frames.items()}
        for name in [n for n in tables if n in RETIRED_TABLES]:
            kind, rows = to_kinds_checked(name, tables.pop(name), f"the {name} frame")
            tables[kind] = pd.concat([tables[kind], rows], ignore_index=True) if kind in tables else rows
        return cls(tables)


@cache
def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=_dtype(c)) for c in TABLES[name].columns})


def _dtype(column: Column) -> str:
    return {"date": "datetime64[ns]", "number": "float64", "integer": "float64", "bool": "boolean"}.get(
        column.kind, "object"
    )
