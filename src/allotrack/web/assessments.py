"""Bedside assessments entered on the web (forms and API alike): the raw values, validated once by the same
pydantic models, and the grade computed from them — MAGIC acute GVHD (:func:`allotrack.clinical.gvhd.magic_stage`,
:func:`~allotrack.clinical.gvhd.magic_grade`) and ASTCT CRS (:func:`allotrack.clinical.crs.astct_crs_grade`).

Both are stored as ``assessments`` rows of the data dictionary's items: the overall grade (``agvhd_grade``,
``crs_grade``) with the rule version in ``rule`` and the raw values as JSON in ``inputs``, and, for GVHD, one row
per organ stage (``agvhd_skin_stage``, ``agvhd_liver_stage``, ``agvhd_ugi_stage``, ``agvhd_lgi_stage``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from allotrack.clinical.crs import ASTCT, CrsGrade, astct_crs_grade
from allotrack.clinical.gvhd import MAGIC, GvhdGrade, magic_grade, magic_stage
from allotrack.errors import AllotrackError


class GvhdValues(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # NaN and Infinity (1e309) are no measurements

    skin_bsa: float = Field(0, ge=0, le=100)
    bilirubin: float = Field(0, ge=0, le=100)
    upper_gi: bool = False
    stool_ml: float = Field(0, ge=0, le=20000)


class CrsValues(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    temperature_c: float = Field(37.0, ge=25, le=45)
    hypotension: bool = False
    vasopressors: int = Field(0, ge=0, le=10)
    oxygen_l_min: float = Field(0, ge=0, le=80)
    high_flow: bool = False
    positive_pressure: bool = False


class Dated(BaseModel):
    date: date
    reason: str | None = Field(None, max_length=500)


class GvhdIn(Dated, GvhdValues):
    pass


class CrsIn(Dated, CrsValues):
    pass


def grade_gvhd(v: GvhdValues) -> GvhdGrade:
    """MAGIC organ stages from the raw values, then the overall grade."""
    return magic_grade(
        skin=magic_stage("skin", bsa_percent=v.skin_bsa).stage,
        liver=magic_stage("liver", bilirubin=v.bilirubin).stage,
        upper_gi=magic_stage("upper_gi", persistent_symptoms=v.upper_gi).stage,
        lower_gi=magic_stage("lower_gi", stool_ml=v.stool_ml).stage,
    )


def grade_crs(v: CrsValues) -> CrsGrade:
    return astct_crs_grade(temperature_c=v.temperature_c, hypotension=v.hypotension, vasopressors=v.vasopressors,
                           oxygen_l_min=v.oxygen_l_min, high_flow=v.high_flow,
                           positive_pressure=v.positive_pressure)  # fmt: skip


STAGE_ITEMS = {"skin": "agvhd_skin_stage", "liver": "agvhd_liver_stage", "upper_gi": "agvhd_ugi_stage",
               "lower_gi": "agvhd_lgi_stage"}  # fmt: skip


def gvhd_rows(values: GvhdValues, grade: GvhdGrade) -> list[dict[str, Any]]:
    """The overall MAGIC grade (with the raw values) and each organ stage, as assessment rows."""
    inputs = json.dumps(values.model_dump(), sort_keys=True)
    rows = [{"item": "agvhd_grade", "value_text": str(grade.grade), "rule": MAGIC, "inputs": inputs}]
    rows += [{"item": STAGE_ITEMS[organ], "value_text": str(stage), "rule": MAGIC}
             for organ, stage in grade.stages.items() if organ in STAGE_ITEMS]  # fmt: skip
    return rows


def crs_rows(values: CrsValues, grade: CrsGrade) -> list[dict[str, Any]]:
    """The ASTCT CRS grade with the bedside values, as an assessment row."""
    return [{"item": "crs_grade", "value_text": str(grade.grade), "rule": ASTCT,
             "inputs": json.dumps(values.model_dump(), sort_keys=True)}]  # fmt: skip


@dataclass(frozen=True)
class Assessment:
    """One kind of assessment: its values, how it is graded and the assessment rows a graded form is stored as."""

    values: type[BaseModel]
    grade: Callable[[Any], Any]
    rows: Callable[[Any, Any], list[dict[str, Any]]]
    table: str = "assessments"

    def validated(self, form: Mapping[str, Any]) -> BaseModel:
        """The values of an HTML form (blank fields take their defaults; unticked boxes are no)."""
        data = {k: v for k, v in form.items() if k in self.values.model_fields and v != ""}
        try:
            return self.values.model_validate(data)
        except ValidationError as err:
            raise AllotrackError("; ".join(_message(e) for e in err.errors())) from None

    def from_form(self, form: Mapping[str, Any]) -> Any:
        """Grade the values of an HTML form."""
        return self.grade(self.validated(form))

    def records(self, patient_id: str, day: Any, values: BaseModel) -> list[dict[str, Any]]:
        """The assessment rows of one graded form."""
        return [{"patient_id": patient_id, "date": day, **row} for row in self.rows(values, self.grade(values))]


def _message(error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] in ("float_parsing", "int_parsing", "int_from_float"):
        return f"'{field}' must be a number"
    return f"'{field}': {error['msg']}"


ASSESSMENTS = {"gvhd": Assessment(GvhdValues, grade_gvhd, gvhd_rows), "crs": Assessment(CrsValues, grade_crs, crs_rows)}
