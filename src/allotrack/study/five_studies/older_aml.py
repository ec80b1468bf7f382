"""Synthetic records of the HLA-mismatched microtransplantation study in older AML (the bundled demo cohort,
re-keyed)."""

from __future__ import annotations

import pandas as pd

from allotrack.records.schema import TABLES, Records
from allotrack.study.demo import demo_records
from allotrack.study.five_studies._common import CENTRES, ID_COLUMNS, PREFIXES


def older_aml_records() -> Records:
    """HLA-mismatched microtransplantation for older AML (Liu et al., Front Oncol 2026;16:1736302).

    The bundled demo cohort (its documentation lists the published counts it reproduces and the three places where
    the paper contradicts itself), with every id prefixed ``AML-`` and the centre ``MST-AML``. By age group (60–70 y
    vs > 70 y): 20 and 9 patients; male patients 9 / 2; male donors 11 / 4; donor→patient sex pairs F→F 5 / 5,
    F→M 4 / 0, M→F 6 / 2, M→M 5 / 2; unrelated donors 5 / 0; 5/10 HLA-mismatched loci 14 / 8; > 3 MST courses 18 / 2;
    donor age 35.75 ± 4.52 / 43.78 ± 5.85; CR 18 / 6 (``response_eln``); deaths 12 / 9, early deaths (≤ 4 weeks from
    the first chemotherapy) 1 / 3; alive at 1, 3, 5 years 16, 13, 9 / 3, 0, 0; leukaemia-free at 1, 3, 5 years
    16, 10, 9 / 1, 0, 0; deaths from relapse 6 / 5, infection 2 / 2, organ failure 4 / 2; median OS 20 months and
    median follow-up 148.5 months. Blood counts (``anc``, ``plt``) and donor chimerism (``chimerism_pct``) are
    observations, responses ``response_eln`` assessments. A column the current schema does not have is left out.
    """
    prefix, centre = PREFIXES["older_aml"], CENTRES["older_aml"][0]
    frames = {}
    for name, frame in demo_records().tables.items():
        if not len(frame):
            continue
        known = [c.name for c in TABLES[name].columns]
        out = frame[[c for c in frame.columns if c in known]].copy()
        for column in ID_COLUMNS:
            if column in out.columns:
                out[column] = [None if pd.isna(v) else f"{prefix}{v}" for v in out[column]]
        if name == "patients":
            out["centre"] = centre
        frames[name] = out
    return Records(frames)
