"""Clinical rules as pure functions: GVHD and CRS grading, HLA matching, count recovery and chimerism (to come:
responses, CTCAE, risk scores, steroid-refractory GVHD). Every function validates its inputs, raises
:class:`allotrack.errors.InputError` naming the field and value, and returns a small result object that says
which rule and version it applied."""

from allotrack.clinical.chimerism import (
    Chimerism,
    StrLocus,
    classify_chimerism,
    fish_donor_percent,
    mst_gvhd_alert,
    qpcr_donor_percent,
    str_donor_percent,
)
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
from allotrack.clinical.hla import HlaMismatch, dsa_status, hla_mismatches, parse_hla
from allotrack.clinical.recovery import hematopoietic_recovery, neutrophil_engraftment, platelet_engraftment

__all__ = [
    "Chimerism",
    "CrsGrade",
    "GvhdGrade",
    "HlaMismatch",
    "IcansGrade",
    "OrganStage",
    "StrLocus",
    "astct_crs_grade",
    "astct_icans_grade",
    "classify_chimerism",
    "dsa_status",
    "fish_donor_percent",
    "glucksberg_grade",
    "hematopoietic_recovery",
    "hla_mismatches",
    "ibmtr_index",
    "ice_score",
    "magic_grade",
    "magic_stage",
    "maximum_grade",
    "mst_gvhd_alert",
    "neutrophil_engraftment",
    "parse_hla",
    "platelet_engraftment",
    "qpcr_donor_percent",
    "str_donor_percent",
]
