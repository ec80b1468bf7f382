"""Sample size and power (allotrack.design.power) against R and against simulation.

* R (tests/reference/power_reference.R → .json): ``power.prop.test`` itself for two proportions 1:1 (solve n,
  solve power, one-sided, strict, an interval extension of its uniroot search), and the Fleiss (unequal groups),
  Schoenfeld, Freedman, exponential event-probability and Latouche formulas written out in R; 1e-6 relative.
* Properties (hypothesis): solving and re-evaluating round-trips, Freedman never needs fewer events than
  Schoenfeld, Schoenfeld is symmetric in HR ↔ 1/HR, the port of R's zero finder finds the root.
* Simulation (seeded numpy, 10⁴ trials each, vectorised): the empirical power of the test each formula is for,
  at the computed size, within 3 Monte Carlo standard errors plus a stated allowance for the approximation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from allotrack.design.power import (
    SampleSize,
    _zeroin2,
    competing_risks,
    exponential_event_probability,
    logrank,
    two_proportions,
)
from allotrack.errors import InputError
from allotrack.stats import logrank_test

REF = reference("power_reference")
PROPS = {c["name"]: c for c in REF["two_proportions"]}
SURV = {c["name"]: c for c in REF["survival"]}
FUNCS = {"two_proportions": two_proportions, "logrank": logrank, "competing_risks": competing_risks}

N_TRIALS = 10_000
Z975 = stats.norm.isf(0.025)


# ------------------------------------------------------------------------------------------------- against R


@pytest.mark.parametrize("name", list(PROPS))
def test_two_proportions_matches_power_prop_test(name):
    case = PROPS[name]
    res = two_proportions(**case["args"])
    assert_close(res.n_exact[0], case["n"], what="n (group 1)")
    assert_close(res.power, case["power"], what="power")
    if "n2" in case:
        assert_close(res.n_exact[1], case["n2"], what="n (group 2)")
    else:
        assert res.n_exact[1] == res.n_exact[0]
    assert res.n_per_group == tuple(math.ceil(v - 1e-9) for v in res.n_exact)
    assert res.events is None and res.solved_for == ("n" if "power" in case["args"] else "power")


@pytest.mark.parametrize("name", list(SURV))
def test_survival_designs_match_formulas_in_r(name):
    case = SURV[name]
    res = FUNCS[case["fun"]](**case["args"])
    assert_close(res.events_exact, case["events"], what="events")
    assert res.events == math.ceil(case["events"] - 1e-9)
    assert_close(res.power, case["power"], what="power")
    if "n_total" in case:
        assert_close(sum(res.n_exact), case["n_total"], what="patients")
        assert_close(res.input("event_probability"), case["event_probability"], what="P(event)")
        allocation = case["args"]["allocation"]
        assert_close(res.n_exact[0], allocation * case["n_total"], what="group 1")
    else:
        assert res.n_exact is None and res.n_per_group is None and res.n_total is None
    if "cif_group1" in case:
        assert_close(res.input("cif_group1"), case["cif_group1"], what="CIF group 1")


@pytest.mark.parametrize("case", REF["event_probability"], ids=lambda c: str(c["hazard"]))
def test_exponential_event_probability_matches_r(case):
    got = exponential_event_probability(case["hazard"], case["accrual"], case["follow_up"])
    assert_close(got, case["probability"], what="P(event)")


def test_to_frame_and_repr():
    res = logrank(0.6, power=0.8, median_control=12, accrual=24, follow_up=12)
    frame = res.to_frame()
    assert frame.shape[0] == 1
    assert frame.loc[0, "events"] == res.events == 121
    assert frame.loc[0, "n_total"] == res.n_total == sum(res.n_per_group)
    assert frame.loc[0, "hazard_ratio"] == 0.6 and frame.loc[0, "median_control"] == 12
    assert "Schoenfeld" in repr(res) and "patients" in repr(res)
    only_events = logrank(0.6, power=0.8).to_frame()
    assert pd.isna(only_events.loc[0, "n_total"]) and np.isnan(only_events.loc[0, "n1_exact"])
    props = two_proportions(0.3, 0.5, power=0.8).to_frame()
    assert props.loc[0, "n1"] == 93 and pd.isna(props.loc[0, "events"])
    assert isinstance(two_proportions(0.3, 0.5, n=10), SampleSize)


# --------------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("call", "column"),
    [
        (lambda: two_proportions(1.2, 0.5, power=0.8), "p1"),
        (lambda: two_proportions(0.3, 0.5), "power"),
        (lambda: two_proportions(0.3, 0.5, power=0.8, n=50), None),
        (lambda: two_proportions(0.3, 0.3, power=0.8), "p2"),
        (lambda: two_proportions(0.3, 0.5, power=0.8, alternative="greater"), "alternative"),
        (lambda: two_proportions(0.3, 0.5, power=0.8, ratio=0), "ratio"),
        (lambda: two_proportions(0.3, 0.5, n=-3), "n"),
        (lambda: logrank(1.0, power=0.8), "hazard_ratio"),
        (lambda: logrank(0.7, power=0.8, method="freedman", allocation=0.6), "allocation"),
        (lambda: logrank(0.7, power=0.8, method="lakatos"), "method"),
        (lambda: logrank(0.7, n=200), "n"),
        (lambda: logrank(0.7, power=0.8, median_control=12), "follow_up"),
        (lambda: logrank(0.7, power=0.8, median_control=12, hazard_control=0.1, follow_up=3), "hazard_control"),
        (lambda: logrank(0.7, power=0.8, event_probability=1.5), "event_probability"),
        (lambda: logrank(0.7, power=0.8, events=100), "power"),
        (lambda: competing_risks(0.7, 1.0, power=0.8), "cif_control"),
        (lambda: competing_risks(1.0, 0.3, power=0.8), "subdistribution_hr"),
        (lambda: exponential_event_probability(0.1, 0, 0), "follow_up"),
        (lambda: exponential_event_probability(-0.1, 1, 1), "hazard"),
    ],
)
def test_bad_input_names_the_argument(call, column):
    with pytest.raises(InputError) as err:
        call()
    if column is not None:
        assert err.value.column == column


def test_unreachable_power_is_an_input_error():
    # power.prop.test extends its interval below n = 1 and fails once n < 0 (sqrt gives NaN): no n exists
    with pytest.raises(InputError, match="no n"):
        two_proportions(0.01, 0.99, power=1e-9)


# ----------------------------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.02, 0.98),
    st.floats(0.02, 0.98),
    st.floats(0.5, 0.99),
    st.sampled_from([0.01, 0.05, 0.1]),
    st.sampled_from(["two-sided", "one-sided"]),
    st.sampled_from([1.0, 0.5, 2.0, 3.0]),
)
def test_two_proportions_round_trip(p1, p2, power, alpha, alternative, ratio):
    if abs(p1 - p2) < 0.02:
        return
    solved = two_proportions(p1, p2, alpha=alpha, power=power, alternative=alternative, ratio=ratio)
    n1 = solved.n_exact[0]
    again = two_proportions(p1, p2, alpha=alpha, n=n1, alternative=alternative, ratio=ratio)
    # R's uniroot stops within tol = eps^0.25 of the root; power is flat there
    assert again.power == pytest.approx(power, abs=1e-4)
    if ratio != 1:  # the closed form of Fleiss et al.
        pbar = (p1 + ratio * p2) / (ratio + 1)
        z_a = stats.norm.isf(alpha / (2 if alternative == "two-sided" else 1))
        closed = (z_a * math.sqrt((ratio + 1) * pbar * (1 - pbar))
                  + stats.norm.ppf(power) * math.sqrt(ratio * p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (
            ratio * (p1 - p2) ** 2)  # fmt: skip
        assert n1 == pytest.approx(closed, abs=1e-3, rel=1e-6)
    bigger = two_proportions(p1, p2, alpha=alpha, n=solved.n_per_group[0] + 5, alternative=alternative, ratio=ratio)
    assert bigger.power > again.power


@settings(max_examples=60, deadline=None)
@given(st.floats(0.2, 0.95), st.floats(0.5, 0.99), st.floats(0.2, 0.8))
def test_logrank_properties(hr, power, allocation):
    if abs(hr - 1) < 0.02:
        return
    s = logrank(hr, power=power, allocation=allocation)
    assert logrank(1 / hr, power=power, allocation=allocation).events_exact == pytest.approx(s.events_exact, 1e-12)
    assert logrank(hr, events=s.events_exact, allocation=allocation).power == pytest.approx(power, rel=1e-10)
    balanced = logrank(hr, power=power).events_exact
    assert s.events_exact >= balanced * (1 - 1e-12)  # 1:1 needs the fewest events
    if abs(allocation - 0.5) > 1e-3:
        assert s.events_exact > balanced
    f = logrank(hr, power=power, method="freedman")
    assert f.events_exact >= logrank(hr, power=power).events_exact  # atanh(x) >= x
    cr = competing_risks(hr, 0.3, power=power, allocation=allocation)
    assert cr.events_exact == pytest.approx(s.events_exact, rel=1e-12)  # Latouche: Schoenfeld with the SHR
    assert sum(cr.n_exact) * cr.input("event_probability") == pytest.approx(cr.events_exact, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.1, 50.0), st.just(0.0) | st.floats(0.01, 40.0), st.just(0.0) | st.floats(0.01, 40.0))
def test_event_probability_is_the_average_over_follow_up(median, accrual, follow_up):
    if accrual + follow_up == 0:
        return
    lam = math.log(2) / median
    p = exponential_event_probability(lam, accrual, follow_up)
    if accrual > 0:
        integral, _ = integrate.quad(lambda t: -math.expm1(-lam * t), follow_up, follow_up + accrual,
                                     epsabs=1e-13, epsrel=1e-12)  # fmt: skip
        assert p == pytest.approx(integral / accrual, abs=1e-9)
    else:
        assert p == pytest.approx(1 - math.exp(-lam * follow_up), rel=1e-12)
    assert 0 <= p <= 1


@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5), st.floats(0.1, 10))
def test_zeroin_port_finds_the_root(root, scale):
    def f(x):
        return math.atan((x - root) * scale)

    got = _zeroin2(f, -10.0, 10.0, f(-10.0), f(10.0), 1e-10, 1000)
    assert got == pytest.approx(optimize.brentq(f, -10, 10, xtol=1e-14), abs=1e-9)


# ----------------------------------------------------------------------------------------------- simulation


def _mc_tolerance(power: float, allowance: float) -> float:
    """3 Monte Carlo standard errors of an empirical power over N_TRIALS trials, plus ``allowance``."""
    return 3 * math.sqrt(power * (1 - power) / N_TRIALS) + allowance


def _pooled_z(x1, x2, n1, n2):
    """The uncorrected two-proportion z statistic with the pooled variance (prop.test(correct = FALSE))."""
    p = (x1 + x2) / (n1 + n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x1 / n1 - x2 / n2) / np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return np.nan_to_num(z)  # all successes or none: no evidence, z = 0


@pytest.mark.parametrize(("p1", "p2", "ratio"), [(0.3, 0.5, 1.0), (0.2, 0.4, 2.0)])
def test_two_proportions_power_by_simulation(p1, p2, ratio):
    """At the rounded-up sizes: the simulated power of the pooled z test agrees with its exact power (full
    enumeration of both binomials) within 3 MC SE, and the exact power with the formula within 0.01, the
    normal-approximation allowance (measured: exact 0.7991 vs formula 0.8000 for 0.3 vs 0.5 at 93 + 93, 0.8102 vs
    0.8045 for 0.2 vs 0.4 at 63 + 125)."""
    n1, n2 = two_proportions(p1, p2, power=0.8, ratio=ratio).n_per_group
    nominal = two_proportions(p1, p2, n=n1, ratio=ratio).power if ratio == 1 else None
    if nominal is None:  # group 2 rounded up separately: evaluate the formula at the sizes used
        nominal = two_proportions(p1, p2, n=n1, ratio=n2 / n1).power
    rng = np.random.default_rng(20260301)
    x1, x2 = rng.binomial(n1, p1, N_TRIALS), rng.binomial(n2, p2, N_TRIALS)
    empirical = float(np.mean(np.abs(_pooled_z(x1, x2, n1, n2)) > Z975))
    a1, a2 = np.arange(n1 + 1), np.arange(n2 + 1)
    reject = np.abs(_pooled_z(a1[:, None], a2[None, :], n1, n2)) > Z975
    exact = float((stats.binom.pmf(a1, n1, p1)[:, None] * stats.binom.pmf(a2, n2, p2)[None, :] * reject).sum())
    assert abs(empirical - exact) < _mc_tolerance(exact, 0.0)
    assert abs(exact - nominal) < 0.01
    assert abs(empirical - nominal) < _mc_tolerance(nominal, 0.01)


def _logrank_z(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Two-group log-rank z (group 1 observed − expected over its SD) for each row of (trials × patients)
    arrays; event times are continuous, so untied (ties only among censored times)."""
    order = np.argsort(time, axis=1, kind="stable")
    e = np.take_along_axis(event, order, 1).astype(float)
    g = np.take_along_axis(group, order, 1).astype(float)
    n_risk = time.shape[1] - np.arange(time.shape[1], dtype=float)
    n1_risk = g[:, ::-1].cumsum(axis=1)[:, ::-1]
    observed = (e * g).sum(axis=1)
    expected = (e * n1_risk / n_risk).sum(axis=1)
    variance = (e * n1_risk * (n_risk - n1_risk) / n_risk**2).sum(axis=1)
    return (observed - expected) / np.sqrt(variance)


def _groups(n1: int, n2: int) -> np.ndarray:
    g = np.zeros((N_TRIALS, n1 + n2), dtype=np.int8)
    g[:, :n1] = 1
    return g


def test_vectorised_logrank_equals_logrank_test():
    rng = np.random.default_rng(7)
    g = _groups(20, 25)[:4]
    t = rng.exponential(1.0, g.shape) / np.where(g == 1, 0.6, 1.0)
    c = rng.uniform(0.5, 3.0, g.shape)
    obs, ev = np.minimum(t, c), (t <= c).astype(np.int8)
    z = _logrank_z(obs, ev, g)
    for i in range(g.shape[0]):
        res = logrank_test({"time": obs[i], "event": ev[i], "group": g[i]}, "time", "event", "group")
        assert res.statistic == pytest.approx(z[i] ** 2, rel=1e-10)


@pytest.mark.parametrize(
    ("method", "hr", "allocation"),
    [("schoenfeld", 0.6, 0.5), ("freedman", 0.6, 0.5), ("schoenfeld", 0.7, 2 / 3)],
)
def test_logrank_events_by_simulation(method, hr, allocation):
    """Exponential survival without censoring, the computed number of events split by the allocation: the
    log-rank test's empirical power is within 3 MC SE + 0.025 of the formula's power at those events. The
    allowance covers the formulas' approximation (both use the null variance of the statistic under the
    alternative). Measured with this seed: Schoenfeld HR 0.6, 121 events: 0.783 against 0.802 (0.791 with
    another seed: Schoenfeld is optimistic by about 1.5 points at this effect); Freedman HR 0.6, 126 events:
    0.804 against 0.801; Schoenfeld 2:1, HR 0.7, 278 events: 0.800 against 0.801."""
    d = logrank(hr, power=0.8, method=method, allocation=allocation).events
    n1 = round(allocation * d)
    nominal = logrank(hr, events=d, method=method, allocation=allocation).power
    rng = np.random.default_rng(20260302)
    g = _groups(n1, d - n1)
    t = rng.exponential(1.0, g.shape) / np.where(g == 1, hr, 1.0)
    empirical = float(np.mean(np.abs(_logrank_z(t, np.ones_like(g), g)) > Z975))
    assert abs(empirical - nominal) < _mc_tolerance(nominal, 0.025)


def test_logrank_patients_by_simulation():
    """Uniform accrual over 24 months, 12 more months of follow-up, control median 12 months, HR 0.6: at the
    computed patients the mean number of events is N · P(event) (within 3 MC SE of the mean) and the power is
    within 3 MC SE + 0.025 of the nominal 0.8 (measured: 120.44 events on average, power 0.794)."""
    res = logrank(0.6, power=0.8, median_control=12, accrual=24, follow_up=12)
    n1, n2 = res.n_per_group
    rng = np.random.default_rng(20260303)
    g = _groups(n1, n2)
    lam0 = math.log(2) / 12
    t = rng.exponential(1.0, g.shape) / np.where(g == 1, 0.6 * lam0, lam0)
    censor = 36 - rng.uniform(0, 24, g.shape)
    event = (t <= censor).astype(np.int8)
    events = event.sum(axis=1)
    expected = n1 * res.input("event_probability_group1") + n2 * res.input("event_probability_group2")
    assert abs(events.mean() - expected) < 3 * events.std() / math.sqrt(N_TRIALS)
    assert expected >= res.events_exact  # rounding the groups up only adds events
    empirical = float(np.mean(np.abs(_logrank_z(np.minimum(t, censor), event, g)) > Z975))
    assert abs(empirical - 0.8) < _mc_tolerance(0.8, 0.025)


def test_competing_risks_by_simulation():
    """Fine & Gray's (1999) model: cumulative incidence of the cause of interest F₀(t) = π(1 − e^{−t}) in the
    control group and 1 − (1 − F₀(t))^θ in group 1 (proportional subdistribution hazards, θ = 0.6), everyone
    followed to τ = 1 with F₀(τ) = 0.3. With common administrative censoring the Fine–Gray score test (Gray's
    risk sets) is the log-rank test on the cause-of-interest times with every other patient censored at τ. At the
    Latouche patients: the mean number of cause-1 events is N ψ and the power is within 3 MC SE + 0.025 of 0.8
    (measured: 120.75 events on average against N ψ = 120.70, power 0.787)."""
    theta, f0 = 0.6, 0.3
    res = competing_risks(theta, f0, power=0.8)
    n1, n2 = res.n_per_group
    pi = f0 / (1 - math.exp(-1.0))
    rng = np.random.default_rng(20260304)
    g = _groups(n1, n2)
    u = rng.uniform(size=g.shape)
    q = np.where(g == 1, -np.expm1(np.log1p(-u) / theta), u)  # F₀(T) for the cause-1 time T, when below π
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(q < pi, -np.log1p(-q / pi), np.inf)
    event = (t <= 1.0).astype(np.int8)
    events = event.sum(axis=1)
    expected = n1 * res.input("cif_group1") + n2 * f0
    assert abs(events.mean() - expected) < 3 * events.std() / math.sqrt(N_TRIALS)
    empirical = float(np.mean(np.abs(_logrank_z(np.where(event == 1, t, 1.0), event, g)) > Z975))
    assert abs(empirical - 0.8) < _mc_tolerance(0.8, 0.025)
