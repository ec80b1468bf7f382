"""IMWG myeloma response: per-assessment categories, confirmation and progression from the nadir."""

from __future__ import annotations

from datetime import date

import pytest

from allotrack.clinical.myeloma_response import MyelomaLabs, imwg_assessment, imwg_response
from allotrack.errors import InputError

BASE = MyelomaLabs(serum_m=4.0, urine_m=800, marrow_plasma_cells=40, flc_ratio_normal=False)


@pytest.mark.parametrize(
    ("labs", "category"),
    [
        (MyelomaLabs(serum_m=3.2, urine_m=700), "SD"),  # 20 % serum fall
        (MyelomaLabs(serum_m=2.8, urine_m=350), "MR"),  # 30 % serum, 56 % urine
        (MyelomaLabs(serum_m=1.9, urine_m=150), "PR"),  # 52 %, urine < 200
        (MyelomaLabs(serum_m=1.9, urine_m=300), "MR"),  # serum PR-level but urine only 62 % lower: downgraded to MR
        (MyelomaLabs(serum_m=0.3, urine_m=50), "VGPR"),  # 92.5 %, urine < 100
        (MyelomaLabs(serum_m=0.0, urine_m=0, serum_ife_negative=False), "VGPR"),  # IFE only
        (
            MyelomaLabs(
                serum_m=0.0, urine_m=0, serum_ife_negative=True, urine_ife_negative=True, marrow_plasma_cells=3
            ),
            "CR",
        ),
        (
            MyelomaLabs(
                serum_m=0.0,
                urine_m=0,
                serum_ife_negative=True,
                urine_ife_negative=True,
                marrow_plasma_cells=3,
                flc_ratio_normal=True,
                clonal_plasma_cells=False,
            ),
            "sCR",
        ),
        (
            MyelomaLabs(
                serum_m=0.0, urine_m=0, serum_ife_negative=True, urine_ife_negative=True, marrow_plasma_cells=6
            ),
            "VGPR",
        ),
        (MyelomaLabs(serum_m=4.0, urine_m=800, new_lesions=True), "PD"),
        (MyelomaLabs(serum_m=5.0, urine_m=800), "PD"),  # +1.0 g/dL and +25 % from the nadir (= baseline)
        (MyelomaLabs(serum_m=4.4, urine_m=800), "SD"),  # +0.4 g/dL: below the 0.5 g/dL absolute rise
    ],
)
def test_assessment_categories(labs, category):
    assert imwg_assessment(labs, BASE) == category


def test_flc_and_marrow_only_disease():
    flc_base = MyelomaLabs(serum_m=0.5, urine_m=100, flc_involved=80, flc_uninvolved=1, flc_ratio_normal=False)
    assert imwg_assessment(MyelomaLabs(serum_m=0.5, urine_m=100, flc_involved=35, flc_uninvolved=1), flc_base) == "PR"
    assert imwg_assessment(MyelomaLabs(serum_m=0.5, urine_m=100, flc_involved=60, flc_uninvolved=1), flc_base) == "SD"
    marrow = MyelomaLabs(marrow_plasma_cells=50)
    assert imwg_assessment(MyelomaLabs(marrow_plasma_cells=20), marrow) == "PR"
    with pytest.raises(InputError, match="no measurable disease"):
        imwg_assessment(MyelomaLabs(serum_m=0.2), MyelomaLabs(serum_m=0.3))
    with pytest.raises(InputError, match=r"current.serum_m must be ≥ 0"):
        imwg_assessment(MyelomaLabs(serum_m=-1), BASE)


def test_confirmation_and_progression_from_nadir():
    series = [
        (date(2024, 2, 1), MyelomaLabs(serum_m=1.9, urine_m=150)),  # PR
        (date(2024, 3, 1), MyelomaLabs(serum_m=0.3, urine_m=50)),  # VGPR
        (date(2024, 4, 1), MyelomaLabs(serum_m=0.35, urine_m=60)),  # VGPR -> VGPR confirmed
        (date(2024, 6, 1), MyelomaLabs(serum_m=0.9, urine_m=60)),  # +0.6 from nadir 0.3: PD
        (date(2024, 7, 1), MyelomaLabs(serum_m=1.2, urine_m=60)),  # PD confirmed
    ]
    res = imwg_response(BASE, series)
    assert res.categories == ("PR", "VGPR", "VGPR", "PD", "PD")
    assert (res.best_confirmed, res.best_date, res.progression_date) == ("VGPR", date(2024, 3, 1), date(2024, 6, 1))
    # a single VGPR followed by PR confirms PR only
    res2 = imwg_response(BASE, [series[1], (date(2024, 5, 1), MyelomaLabs(serum_m=0.7, urine_m=90))])
    assert res2.categories == ("VGPR", "PR") and res2.best_confirmed == "PR"
    with pytest.raises(InputError, match="share a date"):
        imwg_response(BASE, [series[0], series[0]])
