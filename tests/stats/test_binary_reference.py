"""Binary outcome by two groups and by stratum against R (tests/reference/binary_reference.R: prop.test's Wilson
intervals, Newcombe's hybrid score interval written out in R, the Katz interval, fisher.test, chisq.test,
prop.test and mantelhaen.test), plus hand-worked and property checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import as_float, assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import contingency as sc

from allotrack.errors import InputError
from allotrack.stats.binary import binary_counts, binary_outcome_table, cmh_test
from allotrack.stats.contingency import chisq_test, fisher_test

REF = reference("binary_reference")
BINARY = {c["name"]: c for c in REF["binary"]}
CMH = {c["name"]: c for c in REF["cmh"]}
UNIROOT_TOL = 1.25e-4  # R's uniroot default tol, .Machine$double.eps^0.25 = 1.2207e-4, on the scale it solves on


def _from_case(case):
    return binary_counts(case["events_a"], case["n_a"], case["events_b"], case["n_b"], conf_level=case["conf_level"])


def _binary_values(res):
    return {
        "prop_a": res.proportion_a.estimate, "prop_a_lower": res.proportion_a.lower,
        "prop_a_upper": res.proportion_a.upper, "prop_b": res.proportion_b.estimate,
        "prop_b_lower": res.proportion_b.lower, "prop_b_upper": res.proportion_b.upper,
        "rd": res.risk_difference.estimate, "rd_lower": res.risk_difference.lower,
        "rd_upper": res.risk_difference.upper,
        "rr": res.relative_risk.estimate, "rr_lower": res.relative_risk.lower, "rr_upper": res.relative_risk.upper,
        "or_tight": res.odds_ratio.estimate, "or_lower_tight": res.odds_ratio.lower,
        "or_upper_tight": res.odds_ratio.upper, "or_sample": res.sample_odds_ratio,
        "chisq": res.chisq.statistic, "chisq_p": res.chisq.p_value,
        "chisq_yates": res.chisq_corrected.statistic, "chisq_yates_p": res.chisq_corrected.p_value,
        "fisher_p": res.fisher_p_value,
    }  # fmt: skip


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_outcome_matches_r(name):
    case = BINARY[name]
    for res in (_from_case(case), binary_outcome_table(np.array(case["table"]), conf_level=case["conf_level"])):
        for key, value in _binary_values(res).items():
            assert_close(value, case[key], what=f"{name}: {key}")


@pytest.mark.parametrize("name", list(BINARY))
def test_chisq_equals_prop_test_in_r_and_here(name):
    case = BINARY[name]
    res = _from_case(case)
    assert_close(res.chisq.statistic, case["prop_test"], what="prop.test(correct = FALSE)")
    assert_close(res.chisq.p_value, case["prop_test_p"], what="prop.test(correct = FALSE) p")
    assert_close(res.chisq_corrected.statistic, case["prop_test_yates"], what="prop.test")
    assert_close(res.chisq_corrected.p_value, case["prop_test_yates_p"], what="prop.test p")


def _uniroot_scale(values):
    """fisher.test / mantelhaen.test solve for the odds ratio below 1 and for its reciprocal above 1."""
    v = as_float(values)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(v) & (v > 0), np.minimum(v, 1 / v), 0.0)


@pytest.mark.parametrize("name", list(BINARY))
def test_odds_ratio_agrees_with_fisher_test_default_tolerance(name):
    """R's printed fisher.test estimate and limits are roots found to uniroot's default tolerance only."""
    case = BINARY[name]
    res = _from_case(case).odds_ratio
    ours = _uniroot_scale([res.estimate, res.lower, res.upper])
    r = _uniroot_scale([case["or_r"], case["or_lower_r"], case["or_upper_r"]])
    np.testing.assert_allclose(ours, r, rtol=0, atol=UNIROOT_TOL)
    # zero and infinite limits are exact in R too
    for ours_v, r_v in zip(
        [res.estimate, res.lower, res.upper],
        as_float([case["or_r"], case["or_lower_r"], case["or_upper_r"]]),
        strict=True,
    ):
        assert (ours_v == 0) == (r_v == 0) and math.isinf(ours_v) == math.isinf(r_v)


def _cmh_values(res):
    return {
        "chisq": res.chisq.statistic, "chisq_p": res.chisq.p_value,
        "chisq_corrected": res.chisq_corrected.statistic, "chisq_corrected_p": res.chisq_corrected.p_value,
        "or_mh": res.common_odds_ratio.estimate, "or_mh_lower": res.common_odds_ratio.lower,
        "or_mh_upper": res.common_odds_ratio.upper, "exact_p": res.exact_p_value,
        "or_exact_tight": res.exact_odds_ratio.estimate, "or_exact_lower_tight": res.exact_odds_ratio.lower,
        "or_exact_upper_tight": res.exact_odds_ratio.upper,
    }  # fmt: skip


@pytest.mark.parametrize("name", list(CMH))
def test_cmh_matches_mantelhaen_test(name):
    case = CMH[name]
    res = cmh_test(np.array(case["tables"]), conf_level=case["conf_level"])
    for key, value in _cmh_values(res).items():
        assert_close(value, case[key], what=f"{name}: {key}")
    exact = res.exact_odds_ratio
    ours = _uniroot_scale([exact.estimate, exact.lower, exact.upper])
    r = _uniroot_scale([case["or_exact_r"], case["or_exact_lower_r"], case["or_exact_upper_r"]])
    np.testing.assert_allclose(ours, r, rtol=0, atol=UNIROOT_TOL)


def test_cmh_continuity_correction_is_skipped_below_half_as_in_r():
    case = CMH["small_delta"]
    assert abs(case["delta"]) < 0.5
    res = cmh_test(np.array(case["tables"]))
    assert res.chisq_corrected.statistic == res.chisq.statistic
    assert_close(res.chisq_corrected.statistic, case["chisq_corrected"])


def test_msc_rct_primary_result_from_published_counts():
    """GVHD complete response at week 4: 54/65 (MSC) vs 36/65 (control)."""
    case = BINARY["msc_rct_primary"]
    res = binary_counts(54, 65, 36, 65, labels=("MSC", "control"))
    assert res.risk_difference.estimate == pytest.approx(18 / 65, rel=1e-14)  # 0.2769...
    assert f"{res.risk_difference.estimate:.4f}" == "0.2769"
    assert_close(res.risk_difference.estimate, case["rd"], what="risk difference")
    assert_close([res.risk_difference.lower, res.risk_difference.upper], [case["rd_lower"], case["rd_upper"]],
                 what="Newcombe CI")  # fmt: skip
    assert_close(res.chisq.p_value, case["chisq_p"], what="chi-square p without Yates")
    assert_close(res.chisq_corrected.p_value, case["chisq_yates_p"], what="chi-square p with Yates")
    assert_close(res.fisher_p_value, case["fisher_p"], what="Fisher p")
    frame = res.to_frame().set_index("measure")
    assert frame.loc["risk_difference", "estimate"] == res.risk_difference.estimate  # unrounded
    assert frame.attrs["labels"] == ("MSC", "control")


# ---- hand-worked ---------------------------------------------------------------------------------------------


def test_wilson_limit_for_no_events_by_hand():
    # p = 0: the upper Wilson limit is z²/(n + z²), the lower exactly 0
    z = 1.959963984540054
    res = binary_counts(0, 20, 7, 20)
    assert res.proportion_a.lower == 0
    assert res.proportion_a.upper == pytest.approx(z**2 / (20 + z**2), rel=1e-12)


def test_newcombe_by_hand_from_wilson_limits():
    res = binary_counts(54, 65, 36, 65)
    pa, la, ua = res.proportion_a.estimate, res.proportion_a.lower, res.proportion_a.upper
    pb, lb, ub = res.proportion_b.estimate, res.proportion_b.lower, res.proportion_b.upper
    assert res.risk_difference.lower == pytest.approx(pa - pb - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), rel=1e-14)
    assert res.risk_difference.upper == pytest.approx(pa - pb + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2), rel=1e-14)


def test_conditional_mle_of_tea_tasting_solves_its_polynomial():
    # [[3,1],[1,3]]: null weights C(4,s)C(4,4-s) = 1,16,36,16,1 for s = 0..4; the MLE solves E[S; psi] = 3,
    # i.e. sum (s-3) w_s psi^s = 0: psi^4 - 36 psi^2 - 32 psi - 3 = 0.
    roots = np.roots([1, 0, -36, -32, -3])
    psi = max(r.real for r in roots if abs(r.imag) < 1e-12)
    assert binary_outcome_table([[3, 1], [1, 3]]).odds_ratio.estimate == pytest.approx(psi, rel=1e-12)
    # [[1,1],[1,2]]: weights C(2,s)C(3,2-s) = 3,6,1 for s = 0..2; E[S; psi] = 1 gives -3 + psi^2 = 0: sqrt(3)
    assert binary_outcome_table([[1, 1], [1, 2]]).odds_ratio.estimate == pytest.approx(math.sqrt(3), rel=1e-12)


def test_katz_interval_by_hand():
    res = binary_counts(54, 65, 36, 65)
    se = math.sqrt(1 / 54 - 1 / 65 + 1 / 36 - 1 / 65)
    z = 1.959963984540054
    assert res.relative_risk.estimate == pytest.approx(1.5, rel=1e-14)
    assert res.relative_risk.lower == pytest.approx(1.5 * math.exp(-z * se), rel=1e-12)
    assert res.relative_risk.upper == pytest.approx(1.5 * math.exp(z * se), rel=1e-12)


def test_single_stratum_cmh_reduces_to_the_two_by_two_analysis():
    table = np.array([[54, 11], [36, 29]])
    n = table.sum()
    one = cmh_test([table])
    two = binary_outcome_table(table)
    assert one.chisq.statistic == pytest.approx(chisq_test(table).statistic * (n - 1) / n, rel=1e-12)
    assert one.common_odds_ratio.estimate == pytest.approx(two.sample_odds_ratio, rel=1e-12)
    woolf = math.sqrt((1 / table).sum())  # Robins-Breslow-Greenland reduces to Woolf's variance
    z = 1.959963984540054
    assert one.common_odds_ratio.upper == pytest.approx(two.sample_odds_ratio * math.exp(z * woolf), rel=1e-12)
    assert one.exact_p_value == pytest.approx(fisher_test(table).p_value, rel=1e-10)
    for attr in ("estimate", "lower", "upper"):
        assert getattr(one.exact_odds_ratio, attr) == pytest.approx(getattr(two.odds_ratio, attr), rel=1e-12)


@pytest.mark.parametrize("name", [n for n in BINARY if n not in ("all_events_both", "no_events_both")])
def test_conditional_odds_ratio_agrees_with_scipy(name):
    """An independent implementation (scipy.stats.contingency.odds_ratio); scipy gives NaN where the support
    is a single point, R (and we) 0 with the interval (0, Inf)."""
    case = BINARY[name]
    table = np.array(case["table"])
    ours = binary_outcome_table(table, conf_level=case["conf_level"]).odds_ratio
    theirs = sc.odds_ratio(table)
    ci = theirs.confidence_interval(case["conf_level"])
    np.testing.assert_allclose([ours.estimate, ours.lower, ours.upper], [theirs.statistic, ci.low, ci.high],
                               rtol=1e-9)  # fmt: skip


def test_frames_are_tidy_and_unrounded():
    res = binary_counts(54, 65, 36, 65)
    frame = res.to_frame()
    assert list(frame["measure"]) == ["proportion_a", "proportion_b", "risk_difference", "relative_risk",
                                      "odds_ratio", "odds_ratio_sample", "chisq", "chisq_corrected",
                                      "fisher_exact"]  # fmt: skip
    assert frame.set_index("measure").loc["fisher_exact", "p_value"] == res.fisher_p_value
    assert frame.set_index("measure").loc["relative_risk", "upper"] == res.relative_risk.upper
    assert "0.2769" in repr(res)
    cmh = cmh_test(np.array(CMH["rabbits"]["tables"]))
    cframe = cmh.to_frame().set_index("measure")
    assert cframe.loc["chisq_corrected", "p_value"] == cmh.chisq_corrected.p_value
    assert cframe.loc["odds_ratio_exact", "estimate"] == cmh.exact_odds_ratio.estimate
    assert cmh.n_strata == 5 and "5 strata" in repr(cmh)


def test_dataframe_table_gives_labels():
    table = pd.DataFrame({"CR": [54, 36], "no CR": [11, 29]}, index=["MSC", "control"])
    assert binary_outcome_table(table).labels == ("MSC", "control")


# ---- properties ------------------------------------------------------------------------------------------------

groups = st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=60, deadline=None)
@given(groups, groups)
def test_swapping_groups_negates_rd_and_inverts_ratios(ga, gb):
    (a, na), (c, nb) = ga, gb
    ab, ba = binary_counts(a, na, c, nb), binary_counts(c, nb, a, na)
    assert ba.risk_difference.estimate == pytest.approx(-ab.risk_difference.estimate, abs=1e-12)
    assert ba.risk_difference.lower == pytest.approx(-ab.risk_difference.upper, abs=1e-12)
    assert ba.risk_difference.upper == pytest.approx(-ab.risk_difference.lower, abs=1e-12)
    for est in ("relative_risk", "odds_ratio"):
        x, y = getattr(ab, est), getattr(ba, est)
        if 0 < x.estimate < math.inf:
            assert y.estimate == pytest.approx(1 / x.estimate, rel=1e-9)
        if 0 < x.lower < math.inf and 0 < x.upper < math.inf:
            assert y.upper == pytest.approx(1 / x.lower, rel=1e-9)
            assert y.lower == pytest.approx(1 / x.upper, rel=1e-9)
    for t in ("chisq", "chisq_corrected"):
        assert getattr(ba, t).p_value == pytest.approx(getattr(ab, t).p_value, rel=1e-12, nan_ok=True)
    assert ba.fisher_p_value == pytest.approx(ab.fisher_p_value, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(groups, groups)
def test_swapping_outcome_columns_negates_rd_and_inverts_odds_ratio(ga, gb):
    (a, na), (c, nb) = ga, gb
    events, non_events = binary_counts(a, na, c, nb), binary_counts(na - a, na, nb - c, nb)
    assert non_events.risk_difference.estimate == pytest.approx(-events.risk_difference.estimate, abs=1e-12)
    assert non_events.risk_difference.lower == pytest.approx(-events.risk_difference.upper, abs=1e-12)
    x, y = events.odds_ratio, non_events.odds_ratio
    if 0 < x.estimate < math.inf:
        assert y.estimate == pytest.approx(1 / x.estimate, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(groups, groups, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_intervals_contain_their_estimates_and_stay_in_range(ga, gb, level):
    (a, na), (c, nb) = ga, gb
    res = binary_counts(a, na, c, nb, conf_level=level)
    for e in (res.proportion_a, res.proportion_b):
        assert 0 <= e.lower <= e.estimate <= e.upper <= 1
    rd = res.risk_difference
    assert -1 <= rd.lower <= rd.estimate <= rd.upper <= 1
    o = res.odds_ratio
    assert o.lower <= o.estimate <= o.upper
    for p in (res.fisher_p_value, res.chisq.p_value):
        assert math.isnan(p) or 0 <= p <= 1


@settings(max_examples=40, deadline=None)
@given(groups, groups, st.integers(2, 5))
def test_intervals_narrow_as_n_grows(ga, gb, factor):
    (a, na), (c, nb) = ga, gb
    small, large = binary_counts(a, na, c, nb), binary_counts(a * factor, na * factor, c * factor, nb * factor)
    width = lambda e: e.upper - e.lower  # noqa: E731
    assert width(large.risk_difference) < width(small.risk_difference)
    if 0 < a and 0 < c and not (a == na and c == nb):
        assert width(large.relative_risk) < width(small.relative_risk)


def test_wider_level_gives_wider_interval():
    narrow, wide = binary_counts(54, 65, 36, 65, conf_level=0.9), binary_counts(54, 65, 36, 65, conf_level=0.99)
    for est in ("proportion_a", "risk_difference", "relative_risk", "odds_ratio"):
        assert getattr(wide, est).lower < getattr(narrow, est).lower
        assert getattr(wide, est).upper > getattr(narrow, est).upper


strata_tables = st.lists(
    st.lists(st.integers(0, 8), min_size=4, max_size=4).filter(lambda v: sum(v) >= 2), min_size=2, max_size=5
)


@settings(max_examples=40, deadline=None)
@given(strata_tables, st.randoms(use_true_random=False))
def test_cmh_ignores_stratum_order_and_inverts_when_groups_swap(cells, rnd):
    tables = np.array(cells).reshape(-1, 2, 2)
    res = cmh_test(tables)
    order = list(range(len(tables)))
    rnd.shuffle(order)
    shuffled = cmh_test(tables[order])
    assert shuffled.chisq.statistic == pytest.approx(res.chisq.statistic, rel=1e-9, nan_ok=True)
    assert shuffled.exact_p_value == pytest.approx(res.exact_p_value, rel=1e-9)
    swapped = cmh_test(tables[:, ::-1, :])
    assert swapped.chisq_corrected.statistic == pytest.approx(res.chisq_corrected.statistic, rel=1e-9, nan_ok=True)
    assert swapped.exact_p_value == pytest.approx(res.exact_p_value, rel=1e-9)
    if 0 < res.common_odds_ratio.estimate < math.inf:
        assert swapped.common_odds_ratio.estimate == pytest.approx(1 / res.common_odds_ratio.estimate, rel=1e-9)
    e = res.exact_odds_ratio
    assert e.lower <= e.estimate <= e.upper
    assert 0 <= res.exact_p_value <= 1


# ---- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "argument", "text"),
    [
        ((-1, 65, 36, 65), "events_a", "-1"),
        ((70, 65, 36, 65), "events_a", "70"),
        ((54, 65, 36, 0), "n_b", "at least 1"),
        ((54.5, 65, 36, 65), "events_a", "54.5"),
        ((54, 65, float("nan"), 65), "events_b", "nan"),
        ((54, 65, "x", 65), "events_b", "'x'"),
        ((True, 65, 36, 65), "events_a", "True"),
    ],
)
def test_bad_counts_name_the_argument_and_value(args, argument, text):
    with pytest.raises(InputError) as info:
        binary_counts(*args)
    assert info.value.column == argument
    assert argument in str(info.value) and text in str(info.value)


def test_bad_level_labels_and_tables():
    with pytest.raises(InputError, match="conf_level.*1.5"):
        binary_counts(54, 65, 36, 65, conf_level=1.5)
    with pytest.raises(InputError, match="labels"):
        binary_counts(54, 65, 36, 65, labels=("A", "A"))
    with pytest.raises(InputError, match=r"2 x 2.*\(2, 3\)"):
        binary_outcome_table([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(InputError, match=r"non-negative whole counts") as info:
        binary_outcome_table([[1, -2], [3, 4]])
    assert info.value.rows == (1,) and info.value.values == (-2.0,)
    with pytest.raises(InputError, match="at least one patient"):
        binary_outcome_table([[0, 0], [3, 4]])
    with pytest.raises(InputError, match=r"shape \(k, 2, 2\)"):
        cmh_test([[1, 2], [3, 4]])
    with pytest.raises(InputError, match=r"shape \(k, 2, 2\)"):
        cmh_test(np.ones((2, 3, 2)))
    with pytest.raises(InputError, match="at least 2 patients") as info:
        cmh_test([[[1, 2], [3, 4]], [[1, 0], [0, 0]]])
    assert info.value.rows == (1,) and info.value.values == (1,)
    with pytest.raises(InputError, match="strata must name"):
        cmh_test([[[1, 2], [3, 4]], [[1, 2], [3, 4]]], strata=["x"])
