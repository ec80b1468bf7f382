"""IMWG response from stored observations equals IMWG response from the same values typed by hand."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
from test_derive import history

from allotrack.clinical import MyelomaLabs, imwg_from_observations, imwg_response, myeloma_assessments
from allotrack.errors import InputError
from allotrack.records import Records
from allotrack.records.store import Store

D0 = date(2020, 3, 1)


def day(k: int) -> date:
    return D0 + timedelta(days=k)


def _stored(tmp_path: Path, rows: list[tuple[str, str, int, float, str | None]]) -> pd.DataFrame:
    """Store (patient, item, day, value, unit) rows through an SQLite store; return its observations table."""
    obs = pd.DataFrame(rows, columns=["patient_id", "item", "day", "value", "unit"])
    obs["date"] = [day(k).isoformat() for k in obs.pop("day")]
    store = Store(f"sqlite:///{tmp_path / 'myeloma.db'}")
    store.init()
    store.import_records(Records({**history().tables, "observations": obs}))
    return store.load(tables=["observations"])["observations"]


# IgG myeloma (p1): serum M-protein in g/dL, urine in mg/24 h, FLC in mg/dL, as MyelomaLabs takes them
SERUM = {0: 3.2, 30: 1.4, 60: 0.3, 90: 0.25, 120: 1.0, 150: 1.3}
URINE = {0: 400, 30: 150, 60: 50, 90: 40, 120: 60, 150: 80}
KAPPA = {0: 45.0, 30: 20.0, 60: 5.0, 90: 2.5, 120: 6.0, 150: 8.0}
LAMBDA = {0: 1.0, 30: 1.0, 60: 1.0, 90: 1.2, 120: 1.0, 150: 1.0}


def _igg_rows() -> list[tuple[str, str, int, float, str | None]]:
    """The same values as entered: the baseline in g/dL, g/24 h and mg/dL, the follow-up in the dictionary's
    units (serum g/L, urine mg/(24.h) given as "mg/24h", FLC mg/L) or without a unit (the dictionary's)."""
    rows = [("p1", "mprot_serum", 0, 3.2, "g/dL"), ("p1", "mprot_urine", 0, 0.4, "g/24h"),
            ("p1", "flc_kappa", 0, 45.0, "mg/dL"), ("p1", "flc_lambda", 0, 10.0, "mg/L")]  # fmt: skip
    for k in sorted(SERUM)[1:]:
        rows += [("p1", "mprot_serum", k, SERUM[k] * 10, "g/L"), ("p1", "mprot_urine", k, URINE[k], "mg/24h"),
                 ("p1", "flc_kappa", k, KAPPA[k] * 10, None), ("p1", "flc_lambda", k, LAMBDA[k] * 10, "mg/L")]
    rows.append(("p2", "mprot_serum", 30, 50.0, "g/L"))  # another patient's value is not used
    return rows


def _by_hand(k: int) -> MyelomaLabs:
    return MyelomaLabs(serum_m=SERUM[k], urine_m=URINE[k], flc_involved=KAPPA[k], flc_uninvolved=LAMBDA[k],
                       flc_ratio_normal=False)  # every kappa/lambda ratio here is above 1.65


def test_response_from_stored_observations_equals_the_hand_typed_response(tmp_path):
    obs = _stored(tmp_path, _igg_rows())
    stored_units = obs[obs["patient_id"] == "p1"].groupby("item")["unit"].unique().map(list).to_dict()
    assert stored_units == {"flc_kappa": ["mg/L"], "flc_lambda": ["mg/L"], "mprot_serum": ["g/L"],
                            "mprot_urine": ["mg/(24.h)"]}  # fmt: skip  (converted on import)
    by_hand = imwg_response(_by_hand(0), [(day(k), _by_hand(k)) for k in sorted(SERUM)[1:]])
    assert (by_hand.best_confirmed, by_hand.best_date, by_hand.progression_date) == ("VGPR", day(60), day(120))
    assert by_hand.categories == ("PR", "VGPR", "VGPR", "PD", "PD")
    from_store = imwg_from_observations(obs, "p1")
    assert from_store == by_hand
    assert imwg_from_observations(obs, "p1", baseline_date=day(10)) == by_hand  # the latest on or before
    # the values handed over are the hand-typed ones, in MyelomaLabs' units
    series = myeloma_assessments(obs, "p1")
    assert [d for d, _ in series] == [day(k) for k in sorted(SERUM)]
    for (_, labs), k in zip(series, sorted(SERUM), strict=True):
        assert labs.serum_m == pytest.approx(SERUM[k]) and labs.urine_m == pytest.approx(URINE[k])
        assert labs.flc_involved == pytest.approx(KAPPA[k]) and labs.flc_uninvolved == pytest.approx(LAMBDA[k])
    # a new therapy on day 100 ends the follow-up: VGPR confirmed, no progression
    before_therapy = imwg_response(_by_hand(0), [(day(k), _by_hand(k)) for k in (30, 60, 90)])
    assert imwg_from_observations(obs, "p1", until=day(100)) == before_therapy
    assert before_therapy.progression_date is None


def test_light_chain_myeloma_lambda_involved_with_immunofixation_and_marrow_given(tmp_path):
    """No serum or urine M-protein: the FLC difference decides; lambda is the involved chain; a normal ratio
    (0.26-1.65) with negative immunofixation and no clonal plasma cells is sCR."""
    kappa = {0: 0.5, 30: 0.6, 60: 1.2, 90: 0.8, 120: 0.8}  # mg/dL
    lam = {0: 30.0, 30: 12.0, 60: 1.5, 90: 25.0, 120: 30.0}
    rows = [("p3", "flc_kappa", k, kappa[k] * 10, "mg/L") for k in kappa]
    rows += [("p3", "flc_lambda", k, lam[k], "mg/dL") for k in lam]
    obs = _stored(tmp_path, rows)
    marrow = {"serum_ife_negative": True, "urine_ife_negative": True, "marrow_plasma_cells": 2.0,
              "clonal_plasma_cells": False}  # fmt: skip
    other = {day(30): marrow, day(60): marrow}

    def hand(k: int) -> MyelomaLabs:
        fields = marrow if k in (30, 60) else {}
        return MyelomaLabs(flc_involved=lam[k], flc_uninvolved=kappa[k],
                           flc_ratio_normal=0.26 <= kappa[k] / lam[k] <= 1.65, **fields)  # fmt: skip

    by_hand = imwg_response(hand(0), [(day(k), hand(k)) for k in (30, 60, 90, 120)])
    assert by_hand.categories == ("CR", "sCR", "PD", "PD")
    assert (by_hand.best_confirmed, by_hand.progression_date) == ("CR", day(90))
    assert imwg_from_observations(obs, "p3", other=other) == by_hand
    assert imwg_from_observations(obs, "p3", other=other, involved="lambda") == by_hand


def test_below_detection_is_zero_and_faults_are_named(tmp_path):
    obs = pd.DataFrame({"patient_id": ["p1"] * 4, "item": ["mprot_serum"] * 3 + ["mprot_urine"],
                        "date": ["2020-03-01", "2020-04-01", "2020-05-01", "2020-03-01"],
                        "value": [20.0, None, 1.0, 300.0], "unit": ["g/L", None, "g/L", None],
                        "below_lod": [None, True, None, None]})  # fmt: skip
    series = myeloma_assessments(obs, "p1")
    assert [labs.serum_m for _, labs in series] == [pytest.approx(2.0), 0.0, pytest.approx(0.1)]
    with pytest.raises(InputError, match="no dated M-protein"):
        imwg_from_observations(obs, "p9")
    with pytest.raises(InputError, match="on or before the baseline date 2020-01-01"):
        imwg_from_observations(obs, "p1", baseline_date="2020-01-01")
    twice = pd.concat([obs, obs.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match="'mprot_serum' is observed more than once on 2020-03-01"):
        imwg_from_observations(twice, "p1")
    with pytest.raises(InputError, match="unknown MyelomaLabs field"):
        imwg_from_observations(obs, "p1", other={"2020-04-01": {"ife": True}})
    with pytest.raises(InputError, match="units not convertible"):
        imwg_from_observations(obs.assign(unit=["g/L", None, "mmol/L", None]), "p1")
