"""Linear mixed models against lme4::lmer(REML = TRUE) (tests/reference/mixed_reference.R: sleepstudy, ChickWeight,
nlme's Orthodont and a simulated IL-6 visit x arm trial with missed visits), estimated means against hand
computation from the coefficients, and bad input."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, reference
from scipy.stats import norm

from allotrack.errors import InputError
from allotrack.stats.mixed import MixedModel, fit_mixed_model

REF = reference("mixed_reference")
CASES = {c["name"]: c for c in REF["cases"]}
# Both fits are at the REML optimum (R's with nloptwrap tolerances tightened, ours statsmodels polished by
# Nelder-Mead on the profiled criterion), so the criterion agrees to ~1e-13 relative. The variance parameters
# are only determined to about sqrt(criterion tolerance) because the criterion is flat at its optimum: observed
# differences are <= 2e-6 relative (the sleepstudy intercept-slope correlation, 0.066, is the worst), hence 1e-5.
# Fixed effects and their SEs depend on the variance parameters only weakly: <= 3e-7 relative observed.
RTOL_FIXED = 1e-6
RTOL_VARIANCE = 1e-5
RTOL_CRITERION = 1e-9


@cache
def _fit(name: str) -> MixedModel:
    c = CASES[name]
    return fit_mixed_model(_data(name), c["outcome"], c["fixed"], c["group"], c["random"], time=c["time"])


def _data(name: str) -> pd.DataFrame:
    return pd.DataFrame(CASES[name]["data"])


def _r_name(name: str) -> str:
    """formulaic 'Diet[T.2]' is R's 'Diet2'; 'Intercept' is '(Intercept)'."""
    return "(Intercept)" if name == "Intercept" else re.sub(r"([\w.]+)\[T\.([^\]]+)\]", r"\1\2", name)


@pytest.mark.parametrize("name", list(CASES))
def test_fixed_effects_match_lmer(name):
    c, m = CASES[name], _fit(name)
    assert [_r_name(n) for n in m.coef_names] == c["coef_names"]
    assert_close(m.coef, c["coef"], rtol=RTOL_FIXED, what=f"{name}: fixef")
    assert_close(m.summary["std_error"], c["se"], rtol=RTOL_FIXED, what=f"{name}: SE")
    np.testing.assert_allclose(
        m.vcov,
        np.array(c["vcov"]),
        rtol=RTOL_FIXED * 10,
        atol=1e-12 + RTOL_FIXED * np.abs(np.array(c["vcov"])).max(),
        err_msg=f"{name}: vcov",
    )


@pytest.mark.parametrize("name", list(CASES))
def test_variance_components_and_criterion_match_lmer(name):
    c, m = CASES[name], _fit(name)
    assert_close(m.criterion, c["reml_crit"], rtol=RTOL_CRITERION, what=f"{name}: REMLcrit")
    assert_close(m.loglik, c["loglik"], rtol=RTOL_CRITERION, what=f"{name}: logLik")
    assert m.criterion <= c["reml_crit"] + 1e-8  # never worse than lme4's optimum
    assert_close(m.intercept_var, c["intercept_var"], rtol=RTOL_VARIANCE, what=f"{name}: intercept variance")
    assert_close(m.residual_var, c["residual_var"], rtol=RTOL_VARIANCE, what=f"{name}: residual variance")
    if c["random"] == "slope":
        assert_close(m.slope_var, c["slope_var"], rtol=RTOL_VARIANCE, what=f"{name}: slope variance")
        assert_close(m.corr, c["corr"], rtol=RTOL_VARIANCE, what=f"{name}: correlation")
    else:
        assert np.isnan(m.slope_var) and np.isnan(m.corr)
    assert (m.n_obs, m.n_groups) == (c["n_obs"], c["n_groups"])
    assert m.converged and m.reml


def test_default_lme4_tolerance_stops_near_the_optimum():
    """lme4's default stopping rule leaves REMLcrit at most ~1e-7 above the tight optimum used as reference."""
    for c in CASES.values():
        assert 0 <= c["reml_crit_default"] - c["reml_crit"] < 1e-6


def test_summary_is_wald_z():
    m = _fit("orthodont")
    s = m.summary
    assert np.isinf(s["df"]).all()
    np.testing.assert_allclose(s["t_value"], s["estimate"] / s["std_error"], rtol=1e-14)
    np.testing.assert_allclose(s["p_value"], 2 * norm.sf(np.abs(s["t_value"])), rtol=1e-12)
    np.testing.assert_allclose(s["upper"] - s["estimate"], norm.ppf(0.975) * s["std_error"], rtol=1e-12)
    assert m.to_frame().equals(s)
    vc = m.variance_components
    assert list(vc["component"]) == ["intercept", "residual"]
    assert repr(m).startswith("<MixedModel>")


def test_estimated_means_visit_by_arm_by_hand():
    m = _fit("il6_visit_arm")
    b = dict(zip(m.coef_names, m.coef, strict=True))
    idx = {n: i for i, n in enumerate(m.coef_names)}
    em = m.estimated_means(at=["visit", "arm"]).to_frame()
    assert len(em) == 6
    for row in em.itertuples():
        names = ["Intercept"]
        if row.visit != "day0":
            names.append(f"visit[T.{row.visit}]")
        if row.arm != "Control":
            names.append(f"arm[T.{row.arm}]")
        if row.visit != "day0" and row.arm != "Control":
            names.append(f"visit[T.{row.visit}]:arm[T.{row.arm}]")
        weights = np.zeros(len(b))
        weights[[idx[n] for n in names]] = 1
        assert row.estimate == pytest.approx(sum(b[n] for n in names), rel=1e-12)
        assert row.std_error == pytest.approx(np.sqrt(weights @ m.vcov @ weights), rel=1e-12)
        assert row.lower == pytest.approx(row.estimate - norm.ppf(0.975) * row.std_error, rel=1e-12)
    # by arm, averaged over the three visits with equal weight (not by how many visits were observed)
    by_arm = m.estimated_means(at="arm").to_frame().set_index("arm")
    cells = em.set_index(["arm", "visit"])["estimate"]
    for arm in ("Control", "MSC"):
        assert by_arm.loc[arm, "estimate"] == pytest.approx(cells.loc[arm].mean(), rel=1e-12)


def test_estimated_means_numeric_covariate_by_hand():
    m = _fit("chickweight")
    b = dict(zip(m.coef_names, m.coef, strict=True))
    em = m.estimated_means(at={"Time": [0, 21], "Diet": ["1", "3"]}).to_frame()
    expected = [b["Intercept"], b["Intercept"] + b["Diet[T.3]"], b["Intercept"] + 21 * b["Time"],
                b["Intercept"] + 21 * (b["Time"] + b["Time:Diet[T.3]"]) + b["Diet[T.3]"]]  # fmt: skip
    np.testing.assert_allclose(em["estimate"], expected, rtol=1e-12)
    # Time not listed: held at its mean over the fitted rows
    by_diet = m.estimated_means(at=["Diet"]).to_frame()
    tbar = _data("chickweight")["Time"].mean()
    assert by_diet["estimate"].iloc[1] == pytest.approx(
        b["Intercept"] + b["Diet[T.2]"] + tbar * (b["Time"] + b["Time:Diet[T.2]"]), rel=1e-12
    )
    with pytest.raises(InputError) as err:
        m.estimated_means(at=["visit"])
    assert err.value.column == "visit"


def test_missing_outcomes_are_dropped():
    data = _data("sleepstudy_intercept")
    holed = data.copy()
    holed.loc[[3, 50, 51], "Reaction"] = np.nan
    a = fit_mixed_model(holed, "Reaction", "Days", "Subject")
    b = fit_mixed_model(data.drop(index=[3, 50, 51]), "Reaction", "Days", "Subject")
    assert a.n_obs == 177
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10)


def test_missing_group_column_is_named():
    with pytest.raises(InputError) as err:
        fit_mixed_model(_data("sleepstudy_intercept"), "Reaction", "Days", "Patient")
    assert err.value.column == "Patient" and "Patient" in str(err.value)


def test_one_observation_per_subject_refuses_random_slope():
    one = _data("sleepstudy_slope").groupby("Subject").head(1)
    one = one.assign(Days=np.arange(len(one)))
    with pytest.raises(InputError) as err:
        fit_mixed_model(one, "Reaction", "Days", "Subject", random="slope", time="Days")
    assert err.value.column == "Subject" and "Subject" in str(err.value)
    with pytest.raises(InputError) as err:
        fit_mixed_model(one, "Reaction", "Days", "Subject")
    assert err.value.column == "Subject"


def test_constant_time_within_subjects_refuses_random_slope():
    data = _data("sleepstudy_slope")
    data["visit_time"] = data.groupby("Subject").ngroup().astype(float)  # varies only between subjects
    with pytest.raises(InputError) as err:
        fit_mixed_model(data, "Reaction", "Days", "Subject", random="slope", time="visit_time")
    assert err.value.column == "visit_time"


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [
        ({"random": "slope"}, None),
        ({"random": "curve"}, None),
        ({"random": "slope", "time": "Hours"}, "Hours"),
        ({"time": "Days"}, "Days"),
    ],
)
def test_bad_arguments(kwargs, column):
    with pytest.raises(InputError) as err:
        fit_mixed_model(_data("sleepstudy_slope"), "Reaction", "Days", "Subject", **kwargs)
    assert err.value.column == column


def test_missing_group_value_is_an_error():
    data = _data("sleepstudy_intercept").astype({"Subject": object})
    data.loc[7, "Subject"] = None
    with pytest.raises(InputError) as err:
        fit_mixed_model(data, "Reaction", "Days", "Subject")
    assert err.value.column == "Subject" and err.value.rows == (7,)
