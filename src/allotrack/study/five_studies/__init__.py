"""Synthetic records of the five published studies of ``shared/reference/studies.md``, in one record model.

Each study's records reproduce the aggregate counts the paper publishes (listed in each study's docstring below);
individual patient data are not public, so everything the counts do not fix — calendar dates, ages, sexes where
unpublished, cell doses, laboratory values, cytokines, adverse events — is invented with a seeded numpy generator.
Clinical event times that decide a published estimate (a Kaplan–Meier survival at a landmark, a cumulative
incidence, a Cox hazard ratio) are fixed here rather than drawn, so the counts hold for every seed; only the
calendar dates that carry them move with the seed.

Study codes, patient-id prefixes and centres (every id — patient, donor, course, infusion — starts with its study's
prefix, so the five studies share one store without a clash):

=============  ======  =======================  ==========================================================
code           prefix  centre                   study
=============  ======  =======================  ==========================================================
older_aml      AML-    MST-AML                  MST for older AML (Liu et al., Front Oncol 2026)
myeloma_mst    MM-     MST-MM                   MST for multiple myeloma (Lei et al., Front Immunol 2025)
imak           IMAK-   IMAK                     IL-2-preactivated mismatched donor lymphocytes (JCRCO 2023)
msc_rct        MSC-    RCT-01 … RCT-05          MSC + basiliximab RCT for SR-aGVHD (Fu et al., BMC Med 2024)
nk_cells       NK-     NK-01; controls CIBMTR   mb-IL21 NK cells after haplo-HSCT (NCT01904136)
=============  ======  =======================  ==========================================================

Only the record tables of the current model are used: the typed core (patients, donors, courses, infusions,
adverse events, relapses, deaths, follow-up), the dictionary-driven kinds (observations, interventions, assessments,
attributes) and the study-design records (enrolments, populations, matched sets). Dictionary items not in allotrack's
original dictionary (CD4:CD8 ratio, Th0 %, the MSC immunoregulatory factors, the number of organs with chronic GVHD,
mSMART risk, Durie–Salmon stage) are in ``records/default_dictionary.toml``. A disease response of a malignancy with
no criteria-specific item (ALL, lymphoma, MDS, CML) is the generic ``disease_response``; AML uses ``response_eln``,
myeloma ``response_imwg``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allotrack.records.schema import TABLES, Records
from allotrack.study.five_studies._common import CENTRES, PREFIXES, STUDIES
from allotrack.study.five_studies.imak import imak_records
from allotrack.study.five_studies.msc_rct import msc_rct_records
from allotrack.study.five_studies.myeloma_mst import myeloma_mst_records
from allotrack.study.five_studies.nk_cells import nk_cells_records
from allotrack.study.five_studies.older_aml import older_aml_records

__all__ = ["CENTRES", "EXAMPLES", "PREFIXES", "STUDIES", "all_records", "example_records", "five_study_records"]

# The synthetic record sets a plan can name as ``source = "example:<code>"``: the five studies, and the design
# phase of the NK-cell study (its cases and a registry of candidate controls, :mod:`.nk_registry`).
EXAMPLES = (*STUDIES, "nk_registry")


def five_study_records(seed: int = 0) -> dict[str, Records]:
    """One :class:`~allotrack.records.schema.Records` per study, keyed by study code (see the module docstring).

    ``seed`` seeds the generator of everything the published counts leave open; the counts hold for every seed.
    The older-AML records are the bundled demo cohort (:func:`allotrack.study.demo.demo_records`, with the demo's
    own seed, so they are the records ``allotrack demo`` analyses), re-keyed with the ``AML-`` prefix."""
    builders = {"myeloma_mst": myeloma_mst_records, "imak": imak_records, "msc_rct": msc_rct_records,
                "nk_cells": nk_cells_records}  # fmt: skip
    out = {"older_aml": older_aml_records()}
    for k, (code, build) in enumerate(builders.items(), start=1):
        out[code] = build(np.random.default_rng([seed, k]))
    return {code: out[code] for code in STUDIES}


def all_records(seed: int = 0) -> Records:
    """The five studies' records concatenated table by table into one :class:`Records` (one store holds them)."""
    studies = five_study_records(seed)
    frames = {}
    for name in TABLES:
        parts = [r.tables[name] for r in studies.values() if name in r.tables and len(r.tables[name])]
        if parts:
            frames[name] = pd.concat(parts, ignore_index=True, sort=False)
    return Records(frames)


def example_records(code: str, seed: int = 0) -> Records:
    """The synthetic records of one of :data:`EXAMPLES` (KeyError for another code)."""
    if code == "nk_registry":
        from allotrack.study.five_studies.nk_registry import nk_registry_records

        return nk_registry_records(np.random.default_rng([seed, len(STUDIES) + 1]))
    if code not in STUDIES:
        raise KeyError(code)
    return five_study_records(seed)[code]
