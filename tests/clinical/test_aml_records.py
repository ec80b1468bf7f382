"""ELN 2022 response from stored marrow and count observations equals the response computed by hand from the same
values with allotrack.clinical.eln2022_response."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from allotrack.clinical import eln2022_response
from allotrack.clinical.aml_records import eln_from_observations
from allotrack.errors import InputError


def _observations() -> pd.DataFrame:
    rows = [("marrow_blasts_pct", "2021-01-04", 62.0),  # diagnosis (baseline)
            ("marrow_blasts_pct", "2021-02-10", 3.0), ("anc", "2021-02-09", 1.4), ("plt", "2021-02-12", 120.0),
            ("anc", "2021-02-10", 0.9),  # the nearest ANC is the same day's
            ("marrow_blasts_pct", "2021-03-20", 20.0), ("anc", "2021-03-20", 1.2), ("plt", "2021-03-21", 150.0),
            ("marrow_blasts_pct", "2021-05-01", 2.0), ("anc", "2021-05-02", 2.0), ("plt", "2021-04-30", 40.0)]
    return pd.DataFrame({"patient_id": "a1", "item": [r[0] for r in rows],
                         "date": pd.to_datetime([r[1] for r in rows]), "value": [r[2] for r in rows]})  # fmt: skip


def test_each_marrow_after_baseline_is_classified_as_by_hand():
    got = eln_from_observations(_observations(), "a1", other={date(2021, 5, 1): {"mrd_negative": True}})
    by_hand = [
        (date(2021, 2, 10), eln2022_response(3.0, False, False, anc=0.9, platelets=120.0,
                                             baseline_marrow_blasts=62.0)),  # CRh: ANC >= 0.5, platelets >= 50
        (date(2021, 3, 20), eln2022_response(20.0, False, False, anc=1.2, platelets=150.0,
                                             baseline_marrow_blasts=62.0)),  # PR: 20 % <= half of 62 %
        (date(2021, 5, 1), eln2022_response(2.0, False, False, anc=2.0, platelets=40.0,
                                            baseline_marrow_blasts=62.0, mrd_negative=True)),  # CRi (ANC only)
    ]  # fmt: skip
    assert got == by_hand
    assert [r.category for _, r in got] == ["CRh", "PR", "CRi"]


def test_a_marrow_without_counts_nearby_is_refused_with_its_date():
    obs = _observations()
    far = obs[~((obs["item"] == "anc") & (obs["date"] >= "2021-03-01"))]
    with pytest.raises(InputError, match="the marrow of 2021-03-20 has no ANC and platelet count within 3 days"):
        eln_from_observations(far, "a1")
    assert eln_from_observations(obs, "nobody") == []
