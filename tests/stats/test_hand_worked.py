"""Small cases worked by hand (Therneau's validation vignette, book1 data: times 1,1+,6,6,8+,9)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import allotrack as at

BOOK1 = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "event": [1, 1, 0, 1, 1, 0], "x": [0, 1, 1, 1, 0, 0]})


def test_km_by_hand_with_death_and_censoring_tied():
    # t=1: 6 at risk (the censored one too), 1 death -> 5/6; t=6: 4 at risk, 2 deaths -> 5/6 * 2/4
    fit = at.kaplan_meier(BOOK1, "time", "event")
    tab = fit.table
    assert tab["time"].tolist() == [1, 6, 8, 9]
    assert tab["n_risk"].tolist() == [6, 4, 2, 1]
    assert tab["n_censor"].tolist() == [1, 0, 1, 0]
    np.testing.assert_allclose(tab["survival"], [5 / 6, 5 / 12, 5 / 12, 0.0])
    greenwood = 1 / (6 * 5) + 2 / (4 * 2)
    np.testing.assert_allclose(tab["std_err"][1], 5 / 12 * math.sqrt(greenwood))
    assert math.isnan(tab["std_err"][3])  # everyone at risk dies: R gives NA


def test_cox_breslow_score_test_by_hand():
    # Breslow score at beta=0: U = sum over deaths of x_i - mean(x in risk set)
    # t=1: risk {x: 0,1,1,1,0,0} mean 1/2, death x=1 -> +1/2; t=6: risk {1,1,0,0}? (times 6,6,8,9: x 1,0,0,0)
    m = at.cox_ph(BOOK1, "time", "event", covariates=["x"], ties="breslow")
    u = (1 - 3 / 6) + (1 + 0 - 2 * 1 / 4) + (0 - 0)
    info = 3 / 6 * (1 - 3 / 6) + 2 * (1 / 4) * (3 / 4) + 0
    score = m.tests.set_index("test").loc["score", "statistic"]
    assert score == pytest.approx(u * u / info, rel=1e-12)


def test_logrank_two_groups_by_hand():
    # book1 split by x: deaths at t=1 (x=1), t=6 (one x=1, one x=0), t=9 (x=0)
    res = at.logrank_test(BOOK1, "time", "event", by="x")
    # x=0 holds times 9, 6, 8+; x=1 holds 1, 1+, 6.
    # expected for x=0: t=1 1·3/6, t=6 2·3/4, t=9 1·1/1 -> 0.5 + 1.5 + 1 = 3
    np.testing.assert_allclose(res.table["expected"], [3.0, 1.0])
    np.testing.assert_allclose(res.table["observed"], [2, 2])
    # variance: t=1 1·5/5·(3/6)(3/6); t=6 2·2/3·(3/4)(1/4); t=9 has n=1 and is skipped
    v = 1 * 5 / 5 * (3 / 6) * (3 / 6) + 2 * 2 / 3 * (3 / 4) * (1 / 4)
    assert res.statistic == pytest.approx((2 - 3) ** 2 / v, rel=1e-12)
    assert res.statistic == pytest.approx(2.0, rel=1e-12)
