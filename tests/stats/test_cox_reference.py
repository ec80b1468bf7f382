"""Cox models against R survival::coxph, cox.zph, concordance and survfit.coxph
(values written by tests/reference/survival_reference.R with coxph.control(eps=1e-12))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, dataset, reference

import allotrack as at

CASES = reference()["cox"]


def _fit(case):
    a = case["args"]
    return at.cox_ph(
        dataset(case["data"]),
        time=a.get("time", "time"),
        event=a.get("event", "event"),
        covariates=a.get("covariates"),
        formula=a.get("formula"),
        ties=a["ties"],
        strata=a.get("strata"),
        cluster=a.get("cluster"),
        entry=a.get("entry"),
        weights=a.get("weights"),
        tol=1e-12,
        max_iter=100,
    )


@pytest.fixture(scope="module", params=CASES, ids=[c["name"] for c in CASES])
def fitted(request):
    return request.param, _fit(request.param)


def test_coefficients_and_standard_errors(fitted):
    case, m = fitted
    s = m.summary
    assert len(s) == len(case["terms"])
    assert_close(s["coef"], case["coef"], what="coef")
    assert_close(s["se"], case["se"], what="se")
    if case["robust_se"] is not None:
        assert_close(s["robust_se"], case["robust_se"], what="robust se")
    else:
        assert "robust_se" not in s.columns
    assert_close(s["z"], case["z"], what="z")
    assert_close(s["p"], case["p"], what="p")
    assert_close(s["hr_lower"], case["hr_lower"], what="hr lower")
    assert_close(s["hr_upper"], case["hr_upper"], what="hr upper")


def test_loglik_tests_and_counts(fitted):
    case, m = fitted
    assert_close([m.loglik_null, m.loglik], case["loglik"], what="loglik")
    assert m.n == case["n"] and m.n_events == case["n_events"]
    tests = m.tests.set_index("test")
    for name, key in [("likelihood ratio", "lr_test"), ("wald", "wald_test"), ("score", "score_test")]:
        assert_close(tests.loc[name, "statistic"], case[key][0], what=name)
        assert tests.loc[name, "dof"] == case[key][1]
        assert_close(tests.loc[name, "p_value"], case[key][2], what=f"{name} p")
    if case["robust_score_test"] is not None:
        assert_close(tests.loc["robust score", "statistic"], case["robust_score_test"][0], what="robust score")
    assert m.converged


def test_concordance(fitted):
    case, m = fitted
    assert_close(m.concordance, case["concordance"], what="concordance")


def test_proportional_hazards(fitted):
    case, m = fitted
    z = m.test_proportional_hazards()
    assert list(z.index) == case["zph"]["rows"]
    assert_close(z["chisq"], case["zph"]["chisq"], what="zph chisq")
    assert_close(z["df"], case["zph"]["df"], what="zph df")
    assert_close(z["p"], case["zph"]["p"], what="zph p")


PRED = [c for c in CASES if "predict" in c]


@pytest.mark.parametrize("case", PRED, ids=[c["name"] for c in PRED])
def test_predict_survival(case):
    m = _fit(case)
    pr = case["predict"]
    newdata = pd.DataFrame({k: np.atleast_1d(v) for k, v in pr["newdata"].items()})
    out = m.predict_survival(newdata, pr["times"])
    for col in ["survival", "std_err", "lower", "upper"]:
        assert_close(out[col], pr[col], what=f"predict {col}")


def test_formula_expands_categorical_against_first_level():
    case = next(c for c in CASES if c["name"] == "veteran_formula")
    m = _fit(case)
    assert list(m.summary.index) == [
        "trt", "celltype[T.large]", "celltype[T.smallcell]", "celltype[T.squamous]", "karno", "age", "prior",
    ]  # fmt: skip
    assert [t.replace("celltype", "celltype[T.") + "]" if t.startswith("celltype") else t for t in case["terms"]][
        1:4
    ] == list(m.summary.index[1:4])


def test_concordance_counts_equal_predictors_as_ties_in_any_row_order():
    """Equal covariate rows must give bit-identical predictors wherever they sit (R's ties in x count 1/2)."""
    case = next(c for c in CASES if c["name"] == "myeloid")
    data = dataset(case["data"])
    for seed in range(3):
        shuffled = data.sample(frac=1, random_state=seed).reset_index(drop=True)
        m = at.cox_ph(shuffled, time="futime", event="death", formula="trt + sex", ties="efron", tol=1e-12)
        assert_close(m.concordance, case["concordance"], what=f"concordance, shuffle {seed}")
