"""Conditional logistic regression against R (tests/reference/clogit_reference.R: survival::clogit(method="exact")
on 1:1 pairs, sets of 2-8 with several cases and a factor, R's infert, and uninformative sets), plus hand-worked
values (McNemar's discordant pairs, a one-set permutation likelihood, brute-force subset enumeration), properties
(hypothesis) and bad input."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import chi2, norm

from allotrack.errors import ConvergenceWarning, InputError, ModelError
from allotrack.stats import ConditionalLogisticModel, conditional_logistic
from allotrack.stats.results import TestResult

REF = reference("clogit_reference")
CASES = {c["name"]: c for c in REF["cases"]}
LEVELS = {"exposure": ["low", "mid", "high"]}  # R factor levels (reference "low")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _case_frame(case):
    df = pd.DataFrame(case["data"])
    for col, levels in LEVELS.items():
        if col in df:
            df[col] = pd.Categorical(df[col], categories=levels)
    return df


def _fit(case, **kw):
    return conditional_logistic(
        _case_frame(case),
        case["outcome"],
        covariates=case["covariates"],
        strata=case["strata"],
        conf_level=case["conf_level"],
        **kw,
    )


def _r_name(term: str) -> str:
    """formulaic writes a treatment-coded level as 'exposure[T.mid]'; R writes 'exposuremid'."""
    return term.replace("[T.", "").replace("]", "")


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    case = CASES[request.param]
    return case, _fit(case)


def test_coefficients_match_r_clogit(fitted):
    case, m = fitted
    assert isinstance(m, ConditionalLogisticModel)
    assert [_r_name(t) for t in m.terms] == case["terms"]
    s = m.summary
    assert list(s.columns) == ["term", "coef", "se", "z", "p", "odds_ratio", "wald_lower", "wald_upper"]
    assert_close(m.coef, case["coef"], what="coef")
    assert_close(m.se, case["se"], what="se")
    assert_close(m.z, case["z"], what="z")
    assert_close(m.p_value, case["p"], what="p")
    assert_close(m.var.ravel(), np.asarray(case["var"], dtype=float).ravel(), what="variance matrix")
    assert_close(s["coef"], case["coef"], what="summary coef")
    assert_close(s["odds_ratio"], np.exp(case["coef"]), what="odds ratios")
    assert_close(s["wald_lower"], case["or_lower"], what="OR lower")
    assert_close(s["wald_upper"], case["or_upper"], what="OR upper")
    assert_close(m.wald_lower, np.log(case["or_lower"]), what="log-odds lower")
    assert_close(m.wald_upper, np.log(case["or_upper"]), what="log-odds upper")
    # the converged estimates are the maximum-likelihood ones (R refitted at eps = 1e-13)
    assert_close(m.coef, case["tight_coef"], what="tight coef")
    assert_close(m.se, case["tight_se"], what="tight se")


def test_logliks_tests_and_counts_match_r(fitted):
    case, m = fitted
    assert_close([m.loglik_null, m.loglik], [case["loglik_null"], case["loglik"]], what="logliks")
    p = len(case["terms"])
    for name, key in [("likelihood ratio", "lr"), ("wald", "wald"), ("score", "score")]:
        t = m.test(name)
        assert isinstance(t, TestResult)
        assert t.dof == case[f"{key}_df"] == p
        assert_close(t.statistic, case[f"{key}_test"], what=f"{name} statistic")
        assert_close(t.p_value, case[f"{key}_p"], what=f"{name} p")
    assert round(m.test("wald").statistic, 2) == case["wald_test_summary"]  # summary() prints it rounded
    assert list(m.tests["test"]) == ["likelihood ratio", "wald", "score"]
    assert m.n == case["n"]
    assert m.n_events == case["n_events"]
    assert m.n_sets == case["n_sets"]
    assert m.n_informative_sets == case["n_informative_sets"]
    assert m.iterations == case["iterations"]  # the same Newton path as R's coxexact
    assert m.converged is True and m.warnings == ()
    assert m.to_frame().equals(m.summary)
    assert "ConditionalLogisticModel" in repr(m) and "likelihood ratio" in repr(m)


def test_uninformative_sets_case_has_them():
    case = CASES["uninformative_sets"]
    df = _case_frame(case)
    per_set = df.groupby("set")["case"].agg(["sum", "size"])
    assert ((per_set["sum"] == 0).sum(), (per_set["sum"] == per_set["size"]).sum()) == (1, 1)
    m = _fit(case)
    assert (m.n_sets, m.n_informative_sets) == (32, 30)
    informative_only = df[df["set"] <= 30]
    m2 = conditional_logistic(informative_only, "case", covariates=["x"], strata="set")
    assert_close(m2.coef, case["coef"], what="without the uninformative sets")
    assert_close(m2.loglik, case["loglik"], what="loglik without the uninformative sets")


def test_sets_case_exercises_the_exact_likelihood():
    """Several cases per set, and sets with more cases than controls (evaluated through their complement)."""
    df = _case_frame(CASES["sets_2to8_factor"])
    per_set = df.groupby("set")["y"].agg(["sum", "size"])
    assert (per_set["sum"] >= 2).sum() >= 10
    assert (2 * per_set["sum"] > per_set["size"]).sum() >= 5
    assert per_set["size"].min() == 2 and per_set["size"].max() == 8


def test_formula_equals_covariates_and_boolean_outcome():
    case = CASES["sets_2to8_factor"]
    df = _case_frame(case)
    by_cov = _fit(case)
    by_formula = conditional_logistic(df, "y", formula="y ~ dose + exposure", strata="set")
    by_bool = conditional_logistic(df.assign(y=df["y"] == 1), "y", covariates=["dose", "exposure"], strata="set")
    by_arrays = conditional_logistic(df, df["y"].to_numpy(), covariates=["dose", "exposure"], strata=df["set"])
    for other in (by_formula, by_bool, by_arrays):
        assert other.terms == by_cov.terms
        np.testing.assert_allclose(other.coef, by_cov.coef, rtol=1e-13)
        np.testing.assert_allclose(other.se, by_cov.se, rtol=1e-13)


# ---- hand-worked ------------------------------------------------------------------------------------------------
def _pairs(n11: int, n10: int, n01: int, n00: int) -> pd.DataFrame:
    """1:1 pairs by (case exposed, control exposed): n10 pairs with only the case exposed, n01 only the control."""
    rows = []
    pair = 0
    for (xc, xk), count in {(1, 1): n11, (1, 0): n10, (0, 1): n01, (0, 0): n00}.items():
        for _ in range(count):
            rows += [(pair, 1, xc), (pair, 0, xk)]
            pair += 1
    return pd.DataFrame(rows, columns=["set", "outcome", "exposed"])


@pytest.mark.parametrize(("n11", "n10", "n01", "n00"), [(5, 12, 4, 9), (0, 3, 7, 2), (10, 25, 25, 1)])
def test_matched_pairs_are_mcnemar_discordant_pairs(n11, n10, n01, n00):
    """Conditional MLE log(n10/n01), SE sqrt(1/n10 + 1/n01); concordant pairs carry no information."""
    m = conditional_logistic(_pairs(n11, n10, n01, n00), covariates=["exposed"], tol=1e-14, max_iter=50)
    beta = math.log(n10 / n01)
    se = math.sqrt(1 / n10 + 1 / n01)
    assert m.coef[0] == pytest.approx(beta, rel=1e-12, abs=1e-14)
    assert m.se[0] == pytest.approx(se, rel=1e-12)
    assert m.summary["odds_ratio"].iloc[0] == pytest.approx(n10 / n01, rel=1e-12)
    zq = norm.ppf(0.975)
    assert m.summary["wald_lower"].iloc[0] == pytest.approx(math.exp(beta - zq * se), rel=1e-12)
    n_pairs = n11 + n10 + n01 + n00
    assert (m.n, m.n_sets, m.n_informative_sets, m.n_events) == (2 * n_pairs, n_pairs, n_pairs, n_pairs)
    # each discordant pair is a Bernoulli(p) trial, p = e^β / (1 + e^β); a concordant pair contributes 1/2 always
    prob = n10 / (n10 + n01)
    concordant = (n11 + n00) * math.log(2)
    assert m.loglik == pytest.approx(n10 * math.log(prob) + n01 * math.log(1 - prob) - concordant, rel=1e-12)
    assert m.loglik_null == pytest.approx(-n_pairs * math.log(2), rel=1e-12)
    # score test = McNemar's chi-square (n10 - n01)^2 / (n10 + n01)
    assert m.test("score").statistic == pytest.approx((n10 - n01) ** 2 / (n10 + n01), rel=1e-12, abs=1e-14)
    # the default R rule (relative loglik change < 1e-9) already gives the estimate to well within 1e-6
    default = conditional_logistic(_pairs(n11, n10, n01, n00), covariates=["exposed"])
    assert default.coef[0] == pytest.approx(beta, rel=1e-6, abs=1e-12)


def test_one_set_with_two_cases_is_the_permutation_likelihood():
    """One set x = 0, 1, 2, 3 with cases at x = 1 and 3: L(β) = e^{4β} / Σ_{pairs} e^{(x_i + x_j)β}, the pair sums
    being 1, 2, 3, 3, 4, 5. The MLE solves 4 = E_β[S]; the information is Var_β[S]."""
    frame = pd.DataFrame({"set": 1, "outcome": [0, 1, 0, 1], "x": [0.0, 1.0, 2.0, 3.0]})
    sums = np.array([1.0, 2.0, 3.0, 3.0, 4.0, 5.0])

    def moments(b):
        w = np.exp(sums * b)
        mean = (sums * w).sum() / w.sum()
        return mean, ((sums - mean) ** 2 * w).sum() / w.sum(), 4 * b - math.log(w.sum())

    beta = brentq(lambda b: moments(b)[0] - 4.0, -10, 10, xtol=1e-15)
    _, var_s, loglik = moments(beta)
    m = conditional_logistic(frame, covariates=["x"], tol=1e-14, max_iter=50)
    assert m.coef[0] == pytest.approx(beta, rel=1e-12)
    assert m.se[0] == pytest.approx(1 / math.sqrt(var_s), rel=1e-12)
    assert m.loglik == pytest.approx(loglik, rel=1e-12)
    assert m.loglik_null == pytest.approx(-math.log(6), rel=1e-14)
    # score test: U(0) = 4 - 3, I(0) = Var_0[S] = (4 + 1 + 0 + 0 + 1 + 4) / 6
    assert m.test("score").statistic == pytest.approx(1 / (10 / 6), rel=1e-13)
    assert m.test("likelihood ratio").p_value == pytest.approx(chi2.sf(2 * (loglik + math.log(6)), 1), rel=1e-10)


def _enumerated_loglik(frame: pd.DataFrame, cols: list[str], beta: np.ndarray) -> float:
    """Σ over sets of log L_s with the denominator summed over every subset of size m_s (no recursion)."""
    total = 0.0
    for _, group in frame.groupby("set"):
        eta = group[cols].to_numpy(float) @ beta
        y = group["outcome"].to_numpy()
        m = int(y.sum())
        if m in (0, len(y)):
            continue
        denom = sum(math.exp(eta[list(subset)].sum()) for subset in itertools.combinations(range(len(y)), m))
        total += eta[y == 1].sum() - math.log(denom)
    return total


def _random_sets(seed: int, n_sets: int, max_size: int = 7, p: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_sets):
        size = int(rng.integers(2, max_size + 1))
        cases = int(rng.integers(1, size))
        y = rng.permutation(np.r_[np.ones(cases), np.zeros(size - cases)]).astype(int)
        cols = {f"x{j}": np.round(rng.normal(0.5 * y * (j + 1), 1.0), 3) for j in range(p)}
        parts.append(pd.DataFrame({"set": s, "outcome": y, **cols}))
    return pd.concat(parts, ignore_index=True)


def test_loglik_and_score_against_brute_force_enumeration():
    frame = _random_sets(11, 15, max_size=8)
    cols = ["x0", "x1"]
    m = conditional_logistic(frame, covariates=cols, tol=1e-14, max_iter=50)
    assert m.loglik == pytest.approx(_enumerated_loglik(frame, cols, m.coef), rel=1e-12)
    assert m.loglik_null == pytest.approx(_enumerated_loglik(frame, cols, np.zeros(2)), rel=1e-12)
    # the MLE: the enumerated log-likelihood is maximal there; its numerical Hessian inverts to the variance
    h = 1e-4
    grad = [
        (_enumerated_loglik(frame, cols, m.coef + h * e) - _enumerated_loglik(frame, cols, m.coef - h * e)) / (2 * h)
        for e in np.eye(2)
    ]
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)
    hess = np.empty((2, 2))
    for i, j in itertools.product(range(2), range(2)):
        ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
        hess[i, j] = (
            _enumerated_loglik(frame, cols, m.coef + ei + ej)
            - _enumerated_loglik(frame, cols, m.coef + ei - ej)
            - _enumerated_loglik(frame, cols, m.coef - ei + ej)
            + _enumerated_loglik(frame, cols, m.coef - ei - ej)
        ) / (4 * h * h)
    np.testing.assert_allclose(np.linalg.inv(-hess), m.var, rtol=1e-5)


# ---- properties -------------------------------------------------------------------------------------------------
def _fit_or_skip(frame: pd.DataFrame, **kw):
    """Fits with a finite MLE only (random small data can have a monotone likelihood)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            m = conditional_logistic(frame, covariates=["x0", "x1"], **kw)
        except (ConvergenceWarning, ModelError):
            assume(False)
    assume(np.all(m.se < 10))
    return m


def _same(a, b, rtol=1e-9):
    np.testing.assert_allclose(a.coef, b.coef, rtol=rtol, atol=1e-11)
    np.testing.assert_allclose(a.se, b.se, rtol=rtol, atol=1e-11)
    assert a.loglik == pytest.approx(b.loglik, rel=rtol, abs=1e-11)
    assert a.loglik_null == pytest.approx(b.loglik_null, rel=rtol, abs=1e-11)
    np.testing.assert_allclose(a.tests["statistic"], b.tests["statistic"], rtol=1e-8, atol=1e-10)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(6, 25), st.integers(0, 2**31 - 1))
def test_invariant_to_row_order_and_set_labels(seed, n_sets, perm_seed):
    frame = _random_sets(seed, n_sets)
    m = _fit_or_skip(frame)
    rng = np.random.default_rng(perm_seed)
    labels = np.array([f"set-{v}" for v in rng.permutation(10 * n_sets)[:n_sets]])
    shuffled = frame.assign(set=labels[frame["set"].to_numpy()]).sample(frac=1, random_state=perm_seed % 2**32)
    other = conditional_logistic(shuffled, covariates=["x0", "x1"])
    _same(m, other)
    assert (other.n, other.n_sets, other.n_informative_sets) == (m.n, m.n_sets, m.n_informative_sets)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(6, 25), st.integers(1, 6), st.booleans())
def test_an_uninformative_set_changes_nothing(seed, n_sets, size, all_cases):
    frame = _random_sets(seed, n_sets)
    m = _fit_or_skip(frame)
    rng = np.random.default_rng(seed)
    extra = pd.DataFrame(
        {"set": -1, "outcome": int(all_cases), "x0": rng.normal(0, 5, size), "x1": rng.normal(3, 5, size)}
    )
    other = conditional_logistic(pd.concat([frame, extra], ignore_index=True), covariates=["x0", "x1"])
    _same(m, other)
    assert (other.n, other.n_sets, other.n_informative_sets) == (m.n + size, m.n_sets + 1, m.n_informative_sets)
    assert other.n_events == m.n_events + (size if all_cases else 0)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(6, 25), st.lists(st.floats(-50, 50), min_size=25, max_size=25))
def test_adding_a_constant_per_set_to_a_covariate_changes_nothing(seed, n_sets, shifts):
    frame = _random_sets(seed, n_sets)
    m = _fit_or_skip(frame)
    shifted = frame.assign(x1=frame["x1"] + np.asarray(shifts)[frame["set"].to_numpy()])
    other = conditional_logistic(shifted, covariates=["x0", "x1"])
    _same(m, other, rtol=1e-7)


# ---- bad input and degenerate models ------------------------------------------------------------------------------
def _small() -> pd.DataFrame:
    return _random_sets(3, 12)


def test_missing_outcome_is_refused_naming_column_and_rows():
    frame = _small().astype({"outcome": float})
    frame.loc[[4, 9], "outcome"] = np.nan
    with pytest.raises(InputError, match="outcome must not be missing") as err:
        conditional_logistic(frame, covariates=["x0"])
    assert err.value.column == "outcome" and err.value.rows == (4, 9)


def test_outcome_not_zero_one_is_refused():
    frame = _small()
    frame.loc[5, "outcome"] = 2
    with pytest.raises(InputError, match="coded 0/1") as err:
        conditional_logistic(frame, covariates=["x0"])
    assert err.value.column == "outcome" and err.value.rows == (5,) and err.value.values == (2,)
    with pytest.raises(InputError, match="coded 0/1"):
        conditional_logistic(frame.assign(outcome=np.where(frame["outcome"] == 1, "yes", "no")), covariates=["x0"])


def test_missing_set_or_covariate_is_refused():
    frame = _small().astype({"set": float})
    frame.loc[2, "set"] = np.nan
    with pytest.raises(InputError, match="strata must not be missing") as err:
        conditional_logistic(frame, covariates=["x0"])
    assert err.value.column == "set" and err.value.rows == (2,)
    frame = _small()
    frame.loc[[1, 7], "x1"] = np.nan
    with pytest.raises(InputError, match="covariates must not be missing") as err:
        conditional_logistic(frame, covariates=["x0", "x1"])
    assert err.value.column == "x1" and err.value.rows == (1, 7)


def test_covariate_constant_within_every_set_is_a_model_error():
    frame = _small()
    frame["age_band"] = frame["set"] % 3  # varies between sets, constant within each
    with pytest.raises(ModelError, match=r"\['age_band'\] do not vary within any informative matched set"):
        conditional_logistic(frame, covariates=["x0", "age_band"])
    # varying only within an uninformative set does not help
    frame.loc[frame["set"] == 0, "outcome"] = 0
    frame.loc[frame.index[frame["set"] == 0][0], "age_band"] = 17
    with pytest.raises(ModelError, match="do not vary within any informative"):
        conditional_logistic(frame, covariates=["x0", "age_band"])


def test_covariates_collinear_within_sets_are_a_model_error():
    frame = _small()
    frame["x2"] = 2 * frame["x0"] + frame["set"]  # x0 up to a set effect
    with pytest.raises(ModelError, match="'x2' is a linear combination of \\['x0'\\]"):
        conditional_logistic(frame, covariates=["x0", "x2"])


def test_no_informative_set_is_a_model_error():
    frame = _small().assign(outcome=0)
    frame.loc[frame["set"] == 1, "outcome"] = 1
    with pytest.raises(ModelError, match="no matched set has both cases and controls"):
        conditional_logistic(frame, covariates=["x0"])


def test_monotone_likelihood_warns_and_records_it():
    """Discordant pairs all have the case exposed (n01 = 0): the conditional MLE is +∞ while the log-likelihood
    converges to −(concordant pairs)·log 2. R (survival 3.5-3) on these data: 'Loglik converged before variable
    1; beta may be infinite', coef 21.202895, se 16408.711, 20 iterations, loglik −6.931472."""
    frame = _pairs(5, 6, 0, 5)
    with pytest.warns(ConvergenceWarning, match="'exposed'; coefficient may be infinite"):
        m = conditional_logistic(frame, covariates=["exposed"])
    assert m.warnings == ("Loglik converged before variable 'exposed'; coefficient may be infinite",)
    assert m.converged is True and m.iterations == 20
    assert m.coef[0] == pytest.approx(21.202895, rel=1e-6)
    assert m.se[0] == pytest.approx(16408.711, rel=1e-6)
    assert m.loglik == pytest.approx(-10 * math.log(2), rel=1e-8)


def test_perfectly_separated_sets_run_out_of_iterations_as_r():
    """The case has the larger x in every pair: ℓ → 0, so the relative change never falls below tol (R: 'Ran out
    of iterations and did not converge')."""
    frame = pd.DataFrame({"set": np.repeat(np.arange(6), 2), "outcome": [1, 0] * 6, "x": np.arange(12.0) % 5})
    frame.loc[frame["outcome"] == 1, "x"] += 10
    with pytest.warns(ConvergenceWarning, match=r"Ran out of iterations \(20\)"):
        m = conditional_logistic(frame, covariates=["x"])
    assert m.converged is False and m.iterations == 20
    assert m.coef[0] > 1 and -1e-6 < m.loglik < 0


def test_running_out_of_iterations_warns():
    with pytest.warns(ConvergenceWarning, match=r"Ran out of iterations \(1\)"):
        m = conditional_logistic(_small(), covariates=["x0", "x1"], max_iter=1)
    assert m.converged is False and m.iterations == 1


def test_argument_errors():
    frame = _small()
    with pytest.raises(InputError, match="conf_level"):
        conditional_logistic(frame, covariates=["x0"], conf_level=1.0)
    with pytest.raises(InputError, match="left-hand side"):
        conditional_logistic(frame, formula="case ~ x0")
    with pytest.raises(InputError, match="no column 'stratum'"):
        conditional_logistic(frame, covariates=["x0"], strata="stratum")
    with pytest.raises(InputError, match="no test named"):
        conditional_logistic(frame, covariates=["x0"]).test("robust score")
