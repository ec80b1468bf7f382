"""ELN 2022 response, risk scores and CTCAE worst grades, from the guideline tables."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from allotrack.clinical import ctcae, response, risk_scores
from allotrack.errors import InputError


@pytest.mark.parametrize(
    ("kwargs", "category"),
    [
        ({"marrow_blasts": 2, "anc": 1.0, "platelets": 100}, "CR"),
        ({"marrow_blasts": 4.9, "anc": 1.5, "platelets": 250}, "CR"),
        ({"marrow_blasts": 2, "anc": 0.5, "platelets": 50}, "CRh"),
        ({"marrow_blasts": 2, "anc": 0.99, "platelets": 99}, "CRh"),
        ({"marrow_blasts": 2, "anc": 1.2, "platelets": 30}, "CRi"),
        ({"marrow_blasts": 2, "anc": 0.3, "platelets": 120}, "CRi"),
        ({"marrow_blasts": 2, "anc": 0.3, "platelets": 20}, "MLFS"),
        ({"marrow_blasts": 5, "anc": 1.5, "platelets": 150}, "no response"),
        ({"marrow_blasts": 12, "anc": 1.5, "platelets": 150, "baseline_marrow_blasts": 40}, "PR"),
        ({"marrow_blasts": 25, "anc": 1.5, "platelets": 150, "baseline_marrow_blasts": 40}, "no response"),
        ({"marrow_blasts": 2, "anc": 1.5, "platelets": 150, "circulating_blasts": True}, "no response"),
        ({"marrow_blasts": 2, "anc": 1.5, "platelets": 150, "extramedullary": True}, "no response"),
        ({"marrow_blasts": None, "anc": 1.5, "platelets": 150}, "non-evaluable"),
    ],
)
def test_eln2022_categories(kwargs, category):
    args = {"circulating_blasts": False, "extramedullary": False, **kwargs}
    assert response.eln2022_response(**args).category == category


def test_mrd_label_best_response_and_errors():
    cr_neg = response.eln2022_response(1, False, False, 2.0, 200, mrd_negative=True)
    assert cr_neg.label == "CR MRD-" and cr_neg.is_remission
    series = [
        (date(2024, 1, 30), response.eln2022_response(2, False, False, 0.3, 20)),  # MLFS
        (date(2024, 2, 28), response.eln2022_response(2, False, False, 0.7, 60)),  # CRh
        (date(2024, 4, 30), cr_neg),
        (date(2024, 3, 30), response.eln2022_response(1, False, False, 1.5, 150)),  # CR (MRD unknown)
    ]
    best = response.best_response(series)
    assert best.best.label == "CR MRD-"
    assert (best.first_remission_date, best.first_cr_date) == (date(2024, 2, 28), date(2024, 3, 30))
    with pytest.raises(InputError, match="looks like cells/µL"):
        response.eln2022_response(2, False, False, 1500, 150)
    with pytest.raises(InputError, match="marrow_blasts must be ≤ 100"):
        response.eln2022_response(120, False, False, 1, 150)


def test_hct_ci():
    assert risk_scores.hct_ci([]).category == "low"
    s = risk_scores.hct_ci(["diabetes", "psychiatric"])
    assert (s.value, s.category) == (2, "intermediate")
    # hepatic and pulmonary grades are mutually exclusive: the worse counts
    s = risk_scores.hct_ci(["hepatic_mild", "hepatic_moderate_severe", "pulmonary_moderate", "pulmonary_severe"])
    assert (s.value, s.category) == (6, "high")
    with pytest.raises(InputError, match="unknown HCT-CI item"):
        risk_scores.hct_ci(["gout"])


@pytest.mark.parametrize(
    ("kwargs", "category"),
    [
        ({"cytogenetics": ["t(8;21)"], "mutations": ["KIT"]}, "favorable"),
        ({"npm1": True}, "favorable"),
        ({"npm1": True, "flt3_itd": True}, "intermediate"),
        ({"flt3_itd": True}, "intermediate"),
        ({"npm1": True, "cytogenetics": ["-7"]}, "adverse"),
        ({"cebpa_bzip": True}, "favorable"),
        ({"mutations": ["ASXL1"]}, "adverse"),
        ({"npm1": True, "mutations": ["SRSF2"]}, "favorable"),
        ({"tp53_vaf": 12}, "adverse"),
        ({"tp53_vaf": 8}, "intermediate"),
        ({"cytogenetics": ["t(9;11)"]}, "intermediate"),
        ({"cytogenetics": ["complex"]}, "adverse"),
        ({"cytogenetics": ["normal"]}, "intermediate"),
    ],
)
def test_eln2022_risk(kwargs, category):
    assert risk_scores.eln2022_risk(**kwargs).category == category


def test_myeloma_stages_and_performance_status():
    assert [risk_scores.iss(b, 4.0).category for b in (3.4, 3.5, 5.4, 5.5)] == ["I", "II", "II", "III"]
    assert risk_scores.iss(3.0, 3.4).category == "II"
    assert risk_scores.r_iss(1, False, False).category == "I"
    assert risk_scores.r_iss(1, True, False).category == "II"
    assert risk_scores.r_iss(3, False, True).category == "III"
    assert risk_scores.r_iss(3, False, False).category == "II"
    assert risk_scores.r2_iss(1, False, False, False, False).category == "I"
    assert risk_scores.r2_iss(1, False, False, False, True).category == "II"  # 0.5
    assert risk_scores.r2_iss(3, False, False, False, False).category == "III"  # 1.5
    assert risk_scores.r2_iss(3, True, True, False, True).category == "IV"  # 4.0
    assert risk_scores.durie_salmon(11, 9.5, 0, igg_g_dl=3).category == "IA"
    assert risk_scores.durie_salmon(9.5, 9.5, 1, igg_g_dl=6, creatinine_mg_dl=2.5).category == "IIB"
    assert risk_scores.durie_salmon(8.0, 9.5, 0).category == "IIIA"
    assert [risk_scores.kps_to_ecog(k) for k in (100, 80, 60, 40, 20, 0)] == [0, 1, 2, 3, 4, 5]
    assert risk_scores.ecog_to_kps_range(1) == (70, 80)
    with pytest.raises(InputError, match="multiple of 10"):
        risk_scores.kps_to_ecog(85)


def test_ctcae_worst_grades():
    events = pd.DataFrame(
        {
            "patient": ["p1", "p1", "p1", "p2", "p2", "p3"],
            "soc": ["Blood", "Blood", "Gastrointestinal", "Blood", "Blood", "Blood"],
            "term": ["Neutropenia", "Neutropenia", "Diarrhea", "Anemia", "Neutropenia", "Anemia"],
            "grade": [3, 4, 2, 2, 3, None],
        }
    )
    res = ctcae.worst_grades(events)
    p1 = res.by_term[res.by_term["patient"] == "p1"].set_index("term")["grade"].to_dict()
    assert p1 == {"Neutropenia": 4, "Diarrhea": 2}
    assert res.by_soc.set_index(["patient", "soc"])["grade"].to_dict() == {
        ("p1", "Blood"): 4, ("p1", "Gastrointestinal"): 2, ("p2", "Blood"): 3,
    }  # fmt: skip
    assert res.n_missing_grade == 1
    with pytest.raises(InputError, match="table 'adverse_events', column 'grade', row 1 \\(value 6\\)"):
        ctcae.worst_grades(events.assign(grade=[3, 6, 2, 2, 3, 1]))
    with pytest.raises(InputError, match="number 1–5"):
        ctcae.worst_grades(events.assign(grade=["3", "severe", 2, 2, 3, 1]))
