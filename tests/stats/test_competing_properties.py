"""Properties of the competing-risks estimators (hypothesis) and bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import allotrack as at
from allotrack.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::allotrack.errors.ConvergenceWarning")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def competing_frames(draw, causes=2, min_size=5, max_size=40):
    n = draw(st.integers(min_size, max_size))
    time = draw(st.lists(st.integers(1, 25), min_size=n, max_size=n))
    cause = draw(st.lists(st.integers(0, causes), min_size=n, max_size=n))
    group = draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))
    frame = pd.DataFrame({"time": np.asarray(time, float), "cause": cause, "g": group})
    if (frame["cause"] == 0).all():
        frame.loc[0, "cause"] = 1
    return frame


@SETTINGS
@given(competing_frames(causes=1))
def test_single_cause_cif_is_one_minus_km(frame):
    cif = at.cumulative_incidence(frame, "time", "cause")
    km = at.kaplan_meier(frame, "time", "cause")
    grid = np.unique(frame["time"])
    np.testing.assert_allclose(cif.at(grid)["estimate"], 1 - km.at(grid)["survival"], rtol=1e-12, atol=1e-14)


@SETTINGS
@given(competing_frames(causes=3))
def test_cifs_and_all_cause_survival_sum_to_one(frame):
    cif = at.cumulative_incidence(frame, "time", "cause", by="g")
    all_cause = frame.assign(dead=(frame["cause"] > 0).astype(int))
    km = at.kaplan_meier(all_cause, "time", "dead", by="g")
    grid = np.unique(frame["time"])
    est = cif.at(grid)
    surv = km.at(grid)
    for group in cif.groups:
        total = est[est["group"] == group].groupby("time")["estimate"].sum(min_count=1).to_numpy()
        s = surv[surv["group"] == group]["survival"].to_numpy()
        ok = ~np.isnan(total)  # beyond the group's follow-up cmprsk gives NA
        np.testing.assert_allclose(total[ok] + s[ok], 1.0, rtol=1e-12)


@SETTINGS
@given(competing_frames(), st.integers(0, 2**31 - 1), st.sampled_from([1 / 30.4375, 7.0, 1 / 365.25]))
def test_cif_and_gray_invariant_to_row_order_and_time_unit(frame, seed, factor):
    a = at.cumulative_incidence(frame, "time", "cause", by="g").table
    shuffled = frame.sample(frac=1, random_state=seed).assign(time=lambda d: d["time"] * factor)
    b = at.cumulative_incidence(shuffled, "time", "cause", by="g").table
    np.testing.assert_allclose(b["time"], a["time"] * factor, rtol=1e-12)
    for col in ("estimate", "variance", "lower", "upper"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-10, atol=1e-14, equal_nan=True)
    if frame["g"].nunique() == 2 and (frame["cause"] == 1).any():
        g1 = at.gray_test(frame, "time", "cause", by="g")
        g2 = at.gray_test(shuffled, "time", "cause", by="g")
        if not g1.rank_deficient:
            np.testing.assert_allclose(g2.statistic, g1.statistic, rtol=1e-9, atol=1e-12)


def test_labels_with_declared_censoring_value():
    data = pd.DataFrame(
        {"t": [1.0, 2, 3, 4, 5, 6], "status": ["relapse", "censored", "death", "relapse", "censored", "death"]}
    )
    fit = at.cumulative_incidence(data, "t", "status", censor="censored")
    assert fit.causes == ["death", "relapse"]
    coded = at.cumulative_incidence(data.assign(status=[1, 0, 2, 1, 0, 2]), "t", "status")
    np.testing.assert_allclose(
        fit.table[fit.table["cause"] == "relapse"]["estimate"], coded.table[coded.table["cause"] == 1]["estimate"]
    )


BASE = pd.DataFrame(
    {"time": [1.0, 2, 3, 4, 5, 6], "cause": [1, 0, 2, 1, 0, 2], "g": list("ababab"), "x": [1, 2, 0, 3, 1, 2.0]}
)


def test_bad_inputs():
    with pytest.raises(InputError, match="cause 3 does not occur"):
        at.gray_test(BASE, "time", "cause", by="g", cause=3)
    with pytest.raises(InputError, match="cause 3 does not occur"):
        at.fine_gray(BASE, "time", "cause", covariates=["x"], cause=3)
    with pytest.raises(InputError, match="column 'cause'.*row 4.*must not be missing"):
        at.cumulative_incidence(BASE.assign(cause=[1, 0, 2, 1, None, 2]), "time", "cause")
    with pytest.raises(InputError, match="censoring value must be given"):
        at.cumulative_incidence(BASE, "time", "cause", censor=None)
    with pytest.raises(InputError, match="no events"):
        at.cumulative_incidence(BASE.assign(cause=0), "time", "cause")
    with pytest.raises(InputError, match="column 'time'.*row 2.*non-negative"):
        at.fine_gray(BASE.assign(time=[1.0, 2, -3, 4, 5, 6]), "time", "cause", covariates=["x"])
    with pytest.raises(InputError, match="1 level"):
        at.gray_test(BASE.assign(g="a"), "time", "cause", by="g")


def test_cause_specific_and_subdistribution_side_by_side():
    data = pd.read_csv(__import__("conftest").REFERENCE_DIR / "data" / "mgus2_cr.csv")
    both = at.competing_risk_models(data, "etime", "cause", covariates=["age", "hgb"], cause=1)
    cs = at.cox_ph(data.assign(prog=(data["cause"] == 1).astype(int)), "etime", "prog", covariates=["age", "hgb"])
    fg = at.fine_gray(data, "etime", "cause", covariates=["age", "hgb"], cause=1)
    table = both.to_frame()
    np.testing.assert_allclose(table["csh"], cs.summary["hr"], rtol=1e-12)
    np.testing.assert_allclose(table["shr"], fg.summary["shr"], rtol=1e-12)
    assert list(table.index) == ["age", "hgb"]


def test_a_stratum_without_events_adds_nothing_to_grays_test():
    """Matched sets can hold no event at all (every member censored): such a stratum contributes nothing, so the
    stratified test equals the test on the other strata (it raised IndexError)."""
    import allotrack as at

    rng = np.random.default_rng(5)
    n = 60
    data = pd.DataFrame({"time": rng.exponential(10, n).round(2), "status": rng.integers(0, 3, n),
                         "group": rng.integers(0, 2, n), "set": rng.integers(0, 4, n)})  # fmt: skip
    quiet = pd.DataFrame({"time": [1.0, 2.0, 3.0], "status": [0, 0, 0], "group": [0, 1, 1], "set": [9, 9, 9]})
    with_quiet = at.gray_test(pd.concat([data, quiet]), "time", "status", by="group", strata="set")
    without = at.gray_test(data, "time", "status", by="group", strata="set")
    assert with_quiet.statistic == pytest.approx(without.statistic, rel=1e-12)
    assert with_quiet.p_value == pytest.approx(without.p_value, rel=1e-12)
