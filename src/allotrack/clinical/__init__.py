"""Clinical rules as pure functions: GVHD and CRS grading, HLA matching (more to come: responses, count
recovery, chimerism, CTCAE, risk scores). Every function validates its inputs, raises
:class:`allotrack.errors.InputError` naming the field and value, and returns a small result object that says
which rule and version it applied."""

from allotrack.clinical.crs import CrsGrade, IcansGrade, astct_crs_grade, astct_icans_grade, ice_score
from allotrack.clinical.gvhd import (
    GvhdGrade,
    OrganStage,
    glucksberg_grade,
    ibmtr_index,
    magic_grade,
    magic_stage,
    maximum_grade,
)
from allotrack.clinical.hla import HlaMismatch, hla_mismatches, parse_hla

__all__ = [
    "CrsGrade",
    "GvhdGrade",
    "HlaMismatch",
    "IcansGrade",
    "OrganStage",
    "astct_crs_grade",
    "astct_icans_grade",
    "glucksberg_grade",
    "hla_mismatches",
    "ibmtr_index",
    "ice_score",
    "magic_grade",
    "magic_stage",
    "maximum_grade",
    "parse_hla",
]
