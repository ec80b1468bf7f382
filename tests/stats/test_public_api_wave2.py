"""The wave-2 public statistics API of DESIGN.md, called as the contract names it, gives the values of the
functions checked against R in the reference tests (binary, paired, trend, follow-up, logistic, mixed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from allotrack.errors import InputError
from allotrack.stats import (
    binary_counts,
    binary_outcome,
    cmh_test,
    cochran_armitage,
    fit_mixed_model,
    friedman,
    friedman_test,
    jonckheere_terpstra,
    logistic_regression,
    median_follow_up,
    mixed_model,
    paired_t,
    paired_test,
    paired_wilcoxon,
    trend_test,
)


def _trial() -> pd.DataFrame:
    """54/65 vs 36/65 (the MSC trial's week-4 complete response), two strata."""
    arm = ["MSC"] * 65 + ["control"] * 65
    y = [1] * 54 + [0] * 11 + [1] * 36 + [0] * 29
    stratum = (["a", "b"] * 65)[:130]
    return pd.DataFrame({"arm": pd.Categorical(arm, categories=["MSC", "control"]), "cr": y, "stratum": stratum})


def test_binary_outcome_by_a_group_column():
    result = binary_outcome(_trial(), "cr", "arm")
    counts = binary_counts(54, 65, 36, 65)
    assert result.risk_difference == counts.risk_difference and result.odds_ratio == counts.odds_ratio
    assert result.risk_ratio == counts.relative_risk and result.chisq == counts.chisq
    assert binary_outcome(_trial(), "cr", "arm", correct=True).chisq == counts.chisq_corrected
    table = result.table.set_index("group")
    ci = sps.binomtest(54, 65).proportion_ci(method="exact")
    assert (table.loc["MSC", "events"], table.loc["MSC", "n"]) == (54, 65)
    assert table.loc["MSC", ["lower", "upper"]].tolist() == pytest.approx([ci.low, ci.high], rel=1e-12)
    assert result.tests["test"].tolist()[2] == "Fisher's exact test"
    stratified = binary_outcome(_trial(), "cr", "arm", strata="stratum")
    frame = _trial()
    layers = np.stack([pd.crosstab(frame.loc[frame["stratum"] == s, "arm"], -frame.loc[frame["stratum"] == s, "cr"])
                       .loc[["MSC", "control"]].to_numpy() for s in ("a", "b")])  # fmt: skip
    assert stratified.strata is not None
    assert stratified.strata.chisq.p_value == pytest.approx(cmh_test(layers).chisq.p_value, rel=1e-12)
    with pytest.raises(InputError, match="compares two groups"):
        binary_outcome(frame.assign(arm=["a", "b", "c", "d", "e"] * 26), "cr", "arm")


def test_paired_friedman_and_trend_tests_by_their_public_names():
    sleep = pd.DataFrame({"before": [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0],
                          "after": [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]})  # R's sleep data
    w = paired_test(sleep, "before", "after")
    ref = paired_wilcoxon("before", "after", sleep, conf_int=True)
    assert (w.statistic, w.p_value, w.estimate, w.lower, w.upper) == (ref.statistic, ref.p_value, ref.estimate,
                                                                      ref.conf_low, ref.conf_high)  # fmt: skip
    t = paired_test(sleep, "before", "after", method="t")
    assert (t.p_value, t.lower) == (paired_t("before", "after", sleep).p_value, paired_t("before", "after",
                                                                                          sleep).conf_low)  # fmt: skip
    long = pd.DataFrame({"subject": np.repeat(np.arange(6), 3), "visit": np.tile(["d0", "d1", "d7"], 6),
                         "il6": [5, 9, 4, 6, 12, 5, 4, 8, 3, 7, 15, 6, 5, 11, 4, 6, 10, 5.5]})  # fmt: skip
    assert friedman_test(long, "il6", "visit", "subject") == friedman(long, subject="subject", condition="visit",
                                                                      value="il6")  # fmt: skip
    dose = pd.DataFrame({"dose": np.repeat([1.0, 2.0, 3.0], [10, 10, 10]),
                         "response": [1] * 2 + [0] * 8 + [1] * 5 + [0] * 5 + [1] * 8 + [0] * 2})  # fmt: skip
    ca = trend_test(dose, "response", "dose")
    assert ca.p_value == pytest.approx(cochran_armitage([2, 5, 8], [10, 10, 10], [1, 2, 3]).p_value, rel=1e-12)
    jt = trend_test(dose.assign(value=np.arange(30.0)), "value", "dose", method="jonckheere")
    assert jt.statistic == jonckheere_terpstra("value", "dose", dose.assign(value=np.arange(30.0))).statistic


def test_follow_up_logistic_and_mixed_by_their_public_names():
    frame = pd.DataFrame({"t": [5.0, 8, 12, 20, 25, 30, 41, 50], "dead": [1, 0, 1, 0, 0, 1, 0, 0]})
    fu = median_follow_up(frame, "t", "dead")
    # reverse KM ('events' are the censored 8, 20, 25, 41, 50): S = 6/7 at 8, × 4/5 at 20 (0.686), × 3/4 at 25
    # (0.514), × 1/2 at 41 (0.257): the median is 41
    assert fu.table["median"].iloc[0] == 41.0
    logit = logistic_regression(_trial(), "cr", covariates=["arm"]).summary.set_index("term")
    assert {"coef", "odds_ratio", "se", "z", "p", "lower", "upper", "wald_lower", "wald_upper"} <= set(logit.columns)
    rng = np.random.default_rng(3)
    visits = pd.DataFrame({"patient": np.repeat(np.arange(12), 3), "day": np.tile([0.0, 1.0, 7.0], 12)})
    visits["il6"] = 10 + np.repeat(rng.normal(0, 2, 12), 3) + 0.5 * visits["day"] + rng.normal(0, 1, 36)
    a = mixed_model(visits, "il6 ~ day", "patient")
    b = fit_mixed_model(visits, "il6", "day", "patient")
    assert np.allclose(a.coef, b.coef, rtol=1e-12, atol=0)
    slope = mixed_model(visits, "il6 ~ day", "patient", re_formula="1 + day")
    assert slope.slope_var is not None
    with pytest.raises(InputError, match="re_formula must be"):
        mixed_model(visits, "il6 ~ day", "patient", re_formula="day | patient")
