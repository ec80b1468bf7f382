"""Clinical rules as pure functions: acute GVHD (MAGIC, Keystone, IBMTR, steroid response, day-28 response),
chronic GVHD (NIH 2014), CRS/ICANS (ASTCT), ELN 2022 AML and IMWG myeloma response, HLA matching and DSA,
count recovery, chimerism, CTCAE worst grades and baseline risk scores. Every function validates its inputs,
raises :class:`allotrack.errors.InputError` naming the field and value, and returns a small result object that
says which rule and version it applied."""

from allotrack.clinical.chimerism import (
    Chimerism,
    StrLocus,
    chimerism_kinetics,
    classify_chimerism,
    fish_donor_percent,
    mst_gvhd_alert,
    qpcr_donor_percent,
    str_donor_percent,
)
from allotrack.clinical.crs import CrsGrade, IcansGrade, astct_crs_grade, astct_icans_grade, ice_score
from allotrack.clinical.ctcae import WorstGrades, worst_grades
from allotrack.clinical.gvhd import (
    GvhdGrade,
    OrganStage,
    glucksberg_grade,
    ibmtr_index,
    magic_grade,
    magic_stage,
    maximum_grade,
    nih_cgvhd_severity,
    steroid_response,
)
from allotrack.clinical.hla import HlaMismatch, dsa_status, hla_mismatches, parse_hla
from allotrack.clinical.myeloma_records import imwg_from_observations, myeloma_assessments
from allotrack.clinical.myeloma_response import MyelomaLabs, MyelomaResponse, imwg_assessment, imwg_response
from allotrack.clinical.recovery import hematopoietic_recovery, neutrophil_engraftment, platelet_engraftment
from allotrack.clinical.response import AmlResponse, best_response, eln2022_response
from allotrack.clinical.risk_scores import (
    durie_salmon,
    ecog_to_kps_range,
    eln2022_risk,
    hct_ci,
    iss,
    kps_to_ecog,
    r2_iss,
    r_iss,
)

__all__ = [
    "AmlResponse",
    "Chimerism",
    "CrsGrade",
    "GvhdGrade",
    "HlaMismatch",
    "IcansGrade",
    "MyelomaLabs",
    "MyelomaResponse",
    "OrganStage",
    "StrLocus",
    "WorstGrades",
    "astct_crs_grade",
    "astct_icans_grade",
    "best_response",
    "chimerism_kinetics",
    "classify_chimerism",
    "dsa_status",
    "durie_salmon",
    "ecog_to_kps_range",
    "eln2022_response",
    "eln2022_risk",
    "fish_donor_percent",
    "glucksberg_grade",
    "hct_ci",
    "hematopoietic_recovery",
    "hla_mismatches",
    "ibmtr_index",
    "ice_score",
    "imwg_assessment",
    "imwg_from_observations",
    "imwg_response",
    "iss",
    "kps_to_ecog",
    "magic_grade",
    "magic_stage",
    "maximum_grade",
    "mst_gvhd_alert",
    "myeloma_assessments",
    "neutrophil_engraftment",
    "nih_cgvhd_severity",
    "parse_hla",
    "platelet_engraftment",
    "qpcr_donor_percent",
    "r2_iss",
    "r_iss",
    "steroid_response",
    "str_donor_percent",
    "worst_grades",
]
