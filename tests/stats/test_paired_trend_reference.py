"""Paired tests, trend tests and the reverse-KM median follow-up against R (tests/reference/
paired_trend_reference.R → .json): wilcox.test(paired = TRUE), t.test(paired = TRUE), friedman.test,
prop.trend.test, survfit(Surv(time, 1 - status)) medians, and the Jonckheere–Terpstra test written out in R.
Plus a brute-force enumeration of the Jonckheere–Terpstra permutation distribution and property checks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import as_float, assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from allotrack.errors import InputError
from allotrack.stats.follow_up import median_follow_up
from allotrack.stats.paired import friedman, paired_t, paired_wilcoxon
from allotrack.stats.trend import cochran_armitage, jonckheere_terpstra, jt_null_distribution

REF = reference("paired_trend_reference")


def _cases(section: str) -> dict:
    return {c["name"]: c for c in REF[section]}


WILCOX = _cases("wilcox")
TTEST = _cases("t_test")
FRIEDMAN = _cases("friedman")
TREND = _cases("trend")
JT = _cases("jonckheere")
FOLLOW = _cases("follow_up")


# ------------------------------------------------------------------------------------------ paired Wilcoxon


@pytest.mark.parametrize("name", list(WILCOX))
def test_paired_wilcoxon_matches_r(name):
    case = WILCOX[name]
    exact = case["exact"]  # JSON null is R's exact = NULL (the default rule)
    res = paired_wilcoxon(
        as_float(case["x"]),
        as_float(case["y"]),
        exact=exact,
        correct=case["correct"],
        conf_int=True,
        conf_level=case["conf_level"],
    )
    assert res.method == case["method"]
    assert_close(res.statistic, case["statistic"], what="V")
    assert_close(res.p_value, case["p"], what="p")
    assert_close(res.estimate, case["estimate"], what="(pseudo)median")
    assert_close([res.conf_low, res.conf_high], case["conf_int"], what="conf.int")
    assert_close(res.conf_level, case["achieved_conf_level"], what="achieved conf.level")
    frame = res.to_frame()
    assert frame.loc[0, "statistic"] == res.statistic and frame.loc[0, "p_value"] == res.p_value


def test_wilcoxon_counts_zero_and_missing_pairs():
    case = WILCOX["sleep_ties_zero"]
    x = np.append(as_float(case["x"]), [np.nan, 1.0])
    y = np.append(as_float(case["y"]), [2.0, np.nan])
    res = paired_wilcoxon(x, y)
    assert (res.n, res.n_zero, res.n_missing) == (9, 1, 2)
    assert_close(res.p_value, case["p"])
    assert np.isnan(res.estimate)  # conf_int=False: no estimate


def test_wilcoxon_accepts_columns_of_a_frame():
    case = WILCOX["depression_exact"]
    frame = pd.DataFrame({"pre": case["x"], "post": case["y"]})
    assert_close(paired_wilcoxon("pre", "post", frame).p_value, case["p"])


# ------------------------------------------------------------------------------------------------- paired t


@pytest.mark.parametrize("name", list(TTEST))
def test_paired_t_matches_r(name):
    case = TTEST[name]
    res = paired_t(as_float(case["x"]), as_float(case["y"]), conf_level=case["conf_level"])
    assert_close(res.statistic, case["statistic"], what="t")
    assert_close(res.dof, case["df"], what="df")
    assert_close(res.p_value, case["p"], what="p")
    assert_close(res.estimate, case["estimate"], what="mean difference")
    assert_close(res.std_err, case["std_err"], what="stderr")
    assert_close([res.conf_low, res.conf_high], case["conf_int"], what="conf.int")
    assert list(res.to_frame().columns)[:3] == ["test", "n", "mean_difference"]


# ------------------------------------------------------------------------------------------------- Friedman


@pytest.mark.parametrize("name", list(FRIEDMAN))
def test_friedman_matches_r(name):
    case = FRIEDMAN[name]
    if case["form"] == "matrix":
        res = friedman(np.array([as_float(row) for row in case["matrix"]]))
    else:
        long = pd.DataFrame({"y": case["value"], "cond": case["condition"], "subj": case["subject"]})
        res = friedman(long, subject="subj", condition="cond", value="y")
    assert_close(res.statistic, case["statistic"], what="Friedman chi-squared")
    assert res.dof == case["df"]
    assert_close(res.p_value, case["p"], what="p")
    assert res.n_subjects == case["n_subjects"]
    assert res.to_frame().loc[0, "n_subjects"] == case["n_subjects"]


def test_friedman_wide_frame_equals_long_form():
    case = FRIEDMAN["RoundingTimes"]
    wide = pd.DataFrame(np.array(case["matrix"]), columns=["round", "narrow", "wide"])
    long = wide.assign(subject=np.arange(len(wide))).melt(id_vars="subject", var_name="method", value_name="t")
    a = friedman(wide)
    b = friedman(long.sample(frac=1.0, random_state=1), subject="subject", condition="method", value="t")
    assert a.conditions == ("round", "narrow", "wide")
    assert_close(b.statistic, a.statistic)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 6), st.integers(2, 12), st.integers(0, 10_000))
def test_friedman_agrees_with_scipy_and_ignores_condition_order(k, n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=(n, k)).astype(float)  # plenty of ties
    if (y == y[:, :1]).all():
        return
    res = friedman(y)
    ref = stats.friedmanchisquare(*y.T)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert friedman(y[:, rng.permutation(k)]).statistic == pytest.approx(res.statistic, rel=1e-12)
    assert friedman(np.exp(y)).statistic == pytest.approx(res.statistic, rel=1e-12)  # ranks only


# ------------------------------------------------------------------------------------------- Cochran–Armitage


@pytest.mark.parametrize("name", list(TREND))
def test_cochran_armitage_matches_prop_trend_test(name):
    case = TREND[name]
    res = cochran_armitage(case["events"], case["totals"], case["scores"])
    assert_close(res.statistic, case["statistic"], what="X-squared")
    assert_close(res.p_value, case["p"], what="p")
    assert res.dof == 1
    assert res.z**2 == pytest.approx(res.statistic, rel=1e-12)


def test_cochran_armitage_default_scores_are_seq_along():
    case = TREND["smokers"]
    assert_close(cochran_armitage(case["events"], case["totals"]).statistic, case["statistic"])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(1, 30)), min_size=2, max_size=6),
    st.floats(0.1, 10),
    st.floats(-5, 5),
)
def test_cochran_armitage_is_invariant_to_affine_scores(groups, scale, shift):
    events = np.array([min(e, n) for e, n in groups], dtype=float)
    totals = np.array([n for _, n in groups], dtype=float)
    p = events.sum() / totals.sum()
    if p in (0, 1):
        return
    scores = np.arange(len(groups), dtype=float)
    base = cochran_armitage(events, totals, scores)
    moved = cochran_armitage(events, totals, scale * scores + shift)
    flipped = cochran_armitage(events, totals, -scores)
    assert moved.z == pytest.approx(base.z, rel=1e-9, abs=1e-12)
    assert flipped.z == pytest.approx(-base.z, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------------------------------ Jonckheere–Terpstra


@pytest.mark.parametrize("name", list(JT))
def test_jonckheere_terpstra_matches_the_r_definitions(name):
    case = JT[name]
    x, g = as_float(case["values"]), np.asarray(case["groups"], dtype=int)
    for alternative, key in [("two-sided", "two_sided"), ("increasing", "increasing"), ("decreasing", "decreasing")]:
        res = jonckheere_terpstra(x, g, alternative=alternative, exact=False)
        assert not res.exact
        assert_close(res.statistic, case["statistic"], what="J")
        assert_close(res.mean, case["mean"], what="mean")
        assert_close(res.variance, case["variance"], what="tie-corrected variance")
        assert_close(res.z, case["z"], what="z")
        assert_close(res.p_value, case[f"p_normal_{key}"], what=f"normal p {alternative}")
        if f"p_exact_{key}" in case:
            exact = jonckheere_terpstra(x, g, alternative=alternative)
            assert exact.exact
            assert_close(exact.p_value, case[f"p_exact_{key}"], what=f"exact p {alternative}")
    if "perm_variance" in case:  # eq. 6.19 is the exact variance of the permutation distribution
        assert_close(case["variance"], case["perm_variance"], rtol=1e-12, what="variance vs enumeration")


def _brute_force_distribution(sizes: list[int]) -> np.ndarray:
    """J over every distinct assignment of group labels to N untied ordered values (N!/Π n_i! of them)."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    words = np.array(sorted(set(itertools.permutations(labels.tolist()))))
    n = labels.size
    p, q = np.triu_indices(n, k=1)  # value position p < q means value_p < value_q
    j = (words[:, p] < words[:, q]).sum(axis=1)
    return np.bincount(j, minlength=int(sum(a * b for a, b in itertools.combinations(sizes, 2))) + 1) / len(words)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=2, max_size=4), st.integers(0, 10_000))
def test_exact_distribution_equals_brute_force_enumeration(sizes, seed):
    if sum(sizes) > 9:
        sizes = sizes[:2]
    brute = _brute_force_distribution(sizes)
    np.testing.assert_allclose(jt_null_distribution(sizes), brute, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(seed)
    x = rng.permutation(sum(sizes)).astype(float)  # no ties
    g = np.repeat(np.arange(len(sizes)), sizes)
    res = jonckheere_terpstra(x, g, alternative="increasing")
    assert res.exact
    observed = round(res.statistic)
    assert res.p_value == pytest.approx(brute[observed:].sum(), rel=1e-12)
    two = jonckheere_terpstra(x, g)
    assert two.p_value == pytest.approx(
        min(1.0, 2 * min(brute[observed:].sum(), brute[: observed + 1].sum())), rel=1e-12
    )


def test_exact_p_of_the_r_cases_by_python_enumeration():
    case = JT["no_ties_3_3_3"]
    brute = _brute_force_distribution([3, 3, 3])
    j = round(case["statistic"])
    assert_close(brute[j:].sum(), case["p_exact_increasing"], rtol=1e-12)


def test_jonckheere_group_order_sources():
    case = JT["no_ties_3_3_3"]
    x = as_float(case["values"])
    names = np.array(["low", "mid", "high"])[np.asarray(case["groups"]) - 1]
    with pytest.raises(InputError, match="order"):
        jonckheere_terpstra(x, names)
    by_order = jonckheere_terpstra(x, names, order=["low", "mid", "high"])
    by_cat = jonckheere_terpstra(x, pd.Categorical(names, categories=["low", "mid", "high"], ordered=True))
    assert by_order.statistic == by_cat.statistic == case["statistic"]
    reverse = jonckheere_terpstra(x, names, order=["high", "mid", "low"])
    assert reverse.statistic == pytest.approx(27 - case["statistic"])  # Σ n_i n_j − J
    assert reverse.p_value == pytest.approx(by_order.p_value, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), min_size=4, max_size=30))
def test_jonckheere_reversal_swaps_the_one_sided_tails(rows):
    x = np.array([v for v, _ in rows], dtype=float)
    g = np.array([k for _, k in rows])
    if len(np.unique(g)) < 2 or len(np.unique(x)) < 2:
        return
    up = jonckheere_terpstra(x, g, alternative="increasing", exact=False)
    down = jonckheere_terpstra(-x, g, alternative="decreasing", exact=False)
    assert up.p_value == pytest.approx(down.p_value, rel=1e-9)
    assert up.variance == pytest.approx(down.variance, rel=1e-12)


# ------------------------------------------------------------------------------------ reverse-KM follow-up


@pytest.mark.parametrize("name", list(FOLLOW))
def test_median_follow_up_matches_reverse_survfit(name):
    case = FOLLOW[name]
    res = median_follow_up(None, as_float(case["time"]), as_float(case["status"]), case.get("group"),
                           conf_type=case["conf_type"])  # fmt: skip
    table = res.to_frame()
    assert [str(g) for g in table["group"]] == case["groups"]
    assert_close(table["n"], case["n"], what="records")
    assert_close(table["n_censored"], case["n_censored"], what="reverse-KM events")
    assert_close(table["median"], case["median"], what="median follow-up")
    assert_close(table["lower"], case["lower"], what="lower")
    assert_close(table["upper"], case["upper"], what="upper")
    q = res.quantile([0.25, 0.5, 0.75])
    for i, group in enumerate(table["group"]):
        rows = q[q["group"] == group]
        assert_close(rows["quantile"], case["quantile"][i], what=f"quantiles {group}")
        assert_close(rows["lower"], case["quantile_lower"][i], what=f"quantile lower {group}")
        assert_close(rows["upper"], case["quantile_upper"][i], what=f"quantile upper {group}")


def test_median_follow_up_takes_column_names():
    case = FOLLOW["aml_by_x"]
    frame = pd.DataFrame({"t": case["time"], "dead": case["status"], "arm": case["group"]})
    res = median_follow_up(frame, "t", "dead", "arm")
    assert_close(res.to_frame()["median"], case["median"])


# ---------------------------------------------------------------------------------------------- properties


_pairs = st.lists(
    st.tuples(st.floats(-50, 50, allow_nan=False), st.floats(-50, 50, allow_nan=False)), min_size=3, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(_pairs)
def test_swapping_before_and_after_flips_t_and_keeps_p(pairs):
    before = np.array([a for a, _ in pairs])
    after = np.array([b for _, b in pairs])
    d = before - after
    if np.std(d) < 1e-6 * max(1.0, abs(d.mean())):
        return
    ab, ba = paired_t(before, after), paired_t(after, before)
    assert ba.statistic == pytest.approx(-ab.statistic, rel=1e-9, abs=1e-12)
    assert ba.estimate == pytest.approx(-ab.estimate, rel=1e-9, abs=1e-12)
    assert ba.conf_low == pytest.approx(-ab.conf_high, rel=1e-9, abs=1e-9)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(_pairs)
def test_swapping_before_and_after_mirrors_the_signed_rank_test(pairs):
    before = np.array([a for a, _ in pairs])
    after = np.array([b for _, b in pairs])
    if (before == after).all():
        return
    ab = paired_wilcoxon(before, after, conf_int=True)
    ba = paired_wilcoxon(after, before, conf_int=True)
    assert ab.statistic + ba.statistic == pytest.approx(ab.n * (ab.n + 1) / 2)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-9)
    assert 0 < ab.p_value <= 1
    if ab.exact:  # the Walsh-average estimate and interval mirror exactly
        assert ba.estimate == pytest.approx(-ab.estimate, abs=1e-9)
        assert ba.conf_low == pytest.approx(-ab.conf_high, abs=1e-9)
    elif np.isfinite(ab.conf_low):  # R's root-finder interval: within tol_root of mirrored
        assert abs(ba.conf_low + ab.conf_high) <= 2e-4 * max(1.0, abs(ab.conf_high))
    if np.isfinite(ab.conf_low) and ab.conf_level > 0:  # at level 0 R's interval is median(d) twice
        assert ab.conf_low <= ab.estimate + 1e-4 and ab.estimate <= ab.conf_high + 1e-4


# ---------------------------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="same length"):
        paired_t([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InputError, match="all 3 differences"):
        paired_wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="constant"):
        paired_t([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="conf_level") as err:
        paired_wilcoxon([1.0, 2.0], [0.0, 0.5], conf_level=1.5)
    assert err.value.column == "conf_level"
    with pytest.raises(InputError, match="before must be finite"):
        paired_t([1.0, np.inf, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="before must be numeric"):
        paired_t(["a", "b", "c"], [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="events cannot exceed totals") as err:
        cochran_armitage([3, 5], [2, 10])
    assert err.value.column == "events" and err.value.rows == (0,)
    with pytest.raises(InputError, match="scores must differ"):
        cochran_armitage([3, 5], [10, 10], [1, 1])
    with pytest.raises(InputError, match="no events"):
        cochran_armitage([0, 0], [10, 10])
    with pytest.raises(InputError, match="unreplicated complete block"):
        friedman(pd.DataFrame({"s": [1, 1, 2], "c": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]}),
                 subject="s", condition="c", value="v")  # fmt: skip
    with pytest.raises(InputError, match="at least 2 conditions"):
        friedman(np.ones((4, 1)))
    with pytest.raises(InputError, match="alternative"):
        jonckheere_terpstra([1.0, 2.0, 3.0], [1, 2, 2], alternative="up")
    with pytest.raises(InputError, match="exact=True is not available with tied"):
        jonckheere_terpstra([1.0, 2.0, 2.0], [1, 2, 2], exact=True)
    with pytest.raises(InputError, match="not listed in order"):
        jonckheere_terpstra([1.0, 2.0, 3.0], ["a", "b", "c"], order=["a", "b"])
    with pytest.raises(InputError, match="event must be coded 0"):
        median_follow_up(None, [1.0, 2.0], [0, 2])
