"""Properties of greedy nearest-neighbour matching (hypothesis): without replacement every control is used at most
once; every pair lies within its calipers; exact variables are equal within sets; the ratio is respected; the
nearest eligible control is taken at each step (replayed here in plain Python); matching with replacement takes
the k nearest eligible controls; a seed makes m_order="random" reproducible; MatchIt's weights add up as they
should; and bad input is refused naming the column and value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotrack.design.balance import balance_table
from allotrack.design.matching import match_controls
from allotrack.errors import InputError, ModelError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def studies(draw):
    n_t = draw(st.integers(2, 25))
    n_c = draw(st.integers(2, 60))
    n = n_t + n_c
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    treat = np.r_[np.ones(n_t, int), np.zeros(n_c, int)]
    rng.shuffle(treat)
    score = np.round(rng.beta(2, 3, n) + 0.15 * treat, draw(st.sampled_from([2, 3, 12])))  # ties at 2-3 digits
    return pd.DataFrame(
        {
            "pid": [f"P{i:03d}" for i in range(n)],
            "treat": treat,
            "score": score,
            "age": rng.integers(20, 75, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
            "site": rng.choice(["A", "B", "C"], n),
            "dose": rng.normal(size=n),
        }
    )


options = st.fixed_dictionaries(
    {
        "ratio": st.integers(1, 3),
        "caliper": st.one_of(st.none(), st.floats(0.05, 1.0), st.just({"age": 10.0}), st.just({"age": 5.0,
                                                                                                   "distance": 0.1})),
        "exact": st.sampled_from([None, "sex", ["sex", "site"]]),
        "m_order": st.sampled_from(["largest", "smallest", "data", "random"]),
    }
)  # fmt: skip


def _run(df, **kw):
    try:
        return match_controls(df, "treat", ["age", "sex"], distance="score", ids="pid", seed=7, **kw)
    except ModelError:
        return None  # nothing could be matched (MatchIt stops too)


def _pairs(m):
    return [(t, c) for t, cs in m.matches.items() for c in cs]


@SETTINGS
@given(studies(), options)
def test_without_replacement_the_rules_hold(df, opts):
    m = _run(df, **opts)
    if m is None:
        return
    pairs = _pairs(m)
    controls = [c for _, c in pairs]
    assert len(controls) == len(set(controls))  # each control at most once
    assert all(not m.treated[c] and m.treated[t] for t, c in pairs)
    assert all(len(cs) <= opts["ratio"] for cs in m.matches.values())
    exact = [] if opts["exact"] is None else ([opts["exact"]] if isinstance(opts["exact"], str) else opts["exact"])
    for col in exact:
        v = df[col].to_numpy()
        assert all(v[t] == v[c] for t, c in pairs)
    score = df["score"].to_numpy()
    age = df["age"].to_numpy()
    for name, width in m.caliper.items():
        values = score if name == "distance" else age
        assert all(abs(values[t] - values[c]) <= width for t, c in pairs)
    cal = opts["caliper"]
    if isinstance(cal, float):
        assert m.caliper["distance"] == pytest.approx(cal * np.std(score, ddof=1), rel=1e-12)
    # weights: treated 1 if matched, controls sum to the number of matched controls; sets are consistent
    w = m.weights
    matched_t = np.array([len(m.matches[t]) > 0 for t in m.treated_rows])
    assert np.array_equal(w[m.treated_rows] > 0, matched_t) and np.all(w[m.treated_rows][matched_t] == 1)
    wc = w[~m.treated]
    assert wc.sum() == pytest.approx((wc > 0).sum())
    assert set(controls) == set(np.flatnonzero(~m.treated & (w > 0)))
    sf = m.sets_frame(study="s")
    assert not sf.duplicated(["patient_id"]).any()
    assert len(sf) == len(pairs) + matched_t.sum()


@SETTINGS
@given(studies(), options)
def test_each_step_takes_the_nearest_eligible_control(df, opts):
    """Replay the match: in the order the treated units were matched (round by round), the control taken is the
    nearest of those still free, in the stratum and within the calipers; ties go to the first in data order."""
    m = _run(df, **opts)
    if m is None:
        return
    score = df["score"].to_numpy()
    age = df["age"].to_numpy()
    exact = [] if opts["exact"] is None else ([opts["exact"]] if isinstance(opts["exact"], str) else opts["exact"])
    key = df[exact].astype(str).agg("|".join, axis=1).to_numpy() if exact else np.zeros(len(df), str)
    free = set(np.flatnonzero(~m.treated).tolist())
    for r in range(m.match_matrix.shape[1]):
        for a in m.match_order:
            if m.ratios[a] <= r:
                continue
            t = m.treated_rows[a]
            eligible = sorted(
                c for c in free
                if key[c] == key[t] and all(
                    abs((score if name == "distance" else age)[c] - (score if name == "distance" else age)[t]) <= w
                    for name, w in m.caliper.items()
                )
            )  # fmt: skip
            got = m.match_matrix[a, r]
            if not eligible:
                assert got == -1
                continue
            d = [abs(score[c] - score[t]) for c in eligible]
            assert got == eligible[int(np.argmin(d))]
            free.discard(int(got))


@SETTINGS
@given(studies(), st.integers(1, 3), st.sampled_from([None, {"age": 8.0}]))
def test_with_replacement_each_treated_takes_its_k_nearest(df, ratio, caliper):
    m = _run(df, ratio=ratio, caliper=caliper, replace=True)
    if m is None:
        return
    score = df["score"].to_numpy()
    age = df["age"].to_numpy()
    controls = np.flatnonzero(~m.treated)
    for t, cs in m.matches.items():
        eligible = controls if caliper is None else controls[np.abs(age[controls] - age[t]) <= caliper["age"]]
        assert len(cs) == min(ratio, eligible.size)
        if cs:
            chosen = np.abs(score[list(cs)] - score[t])
            others = np.setdiff1d(eligible, cs)
            assert others.size == 0 or chosen.max() <= np.abs(score[others] - score[t]).min()
    # a control's weight is its share over all its sets, rescaled
    raw = np.zeros(len(df))
    for cs in m.matches.values():
        for c in cs:
            raw[c] += 1 / len(cs)
    rc = raw[~m.treated]
    np.testing.assert_allclose(m.weights[~m.treated], rc * (rc > 0).sum() / rc.sum(), rtol=1e-12)
    summed = m.sets_frame().groupby("patient_id")["weight"].sum()
    np.testing.assert_allclose(summed.to_numpy(), pd.Series(m.weights, index=m.ids)[summed.index], rtol=1e-12)


@SETTINGS
@given(studies(), st.integers(0, 2**31 - 1))
def test_random_order_is_reproducible_with_a_seed(df, seed):
    kw = {"distance": "score", "m_order": "random", "ratio": 2, "caliper": 0.5}
    try:
        a = match_controls(df, "treat", ["age"], seed=seed, **kw)
    except ModelError:
        return  # no control within the caliper of any treated unit
    b = match_controls(df, "treat", ["age"], seed=seed, **kw)
    assert np.array_equal(a.match_order, b.match_order) and np.array_equal(a.match_matrix, b.match_matrix)
    assert np.array_equal(a.weights, b.weights)
    assert sorted(a.match_order.tolist()) == list(range(int(a.treated.sum())))


@SETTINGS
@given(studies(), st.sampled_from([(2, 3, 1), (2.5, 4, 1), (3, 4, 2)]))
def test_variable_ratio_allocation(df, spec):
    ratio, hi, lo = spec
    n1 = int(df["treat"].sum())
    if round(ratio * n1) - lo * (n1 - 1) >= n1 * (hi - lo):  # every unit would need max_ratio: R's rep() fails
        with pytest.raises(InputError, match="cannot be allocated"):
            _run(df, ratio=ratio, max_ratio=hi, min_ratio=lo)
        return
    m = _run(df, ratio=ratio, max_ratio=hi, min_ratio=lo)
    if m is None:
        return
    assert m.ratios.sum() == round(ratio * n1)
    assert m.ratios.max() <= hi and m.ratios.min() >= 1
    assert all(len(cs) <= m.ratios[i] for i, cs in enumerate(m.matches.values()))
    controls = [c for cs in m.matches.values() for c in cs]
    assert len(controls) == len(set(controls))


@SETTINGS
@given(studies())
def test_mahalanobis_takes_the_nearest_by_an_independent_distance(df):
    """MatchIt's Mahalanobis distance written out directly (levels / sqrt(2), standardised columns, pooled
    within-group covariance with divisor n - 2, Moore-Penrose inverse): each step takes a nearest free control
    in the stratum (up to rounding)."""
    try:
        m = match_controls(df, "treat", ["age", "dose", "site"], distance="mahalanobis", exact="sex", ids="pid")
    except ModelError:  # no stratum of sex holds both treated and control units
        assert not set(df.loc[df["treat"] == 1, "sex"]) & set(df.loc[df["treat"] == 0, "sex"])
        return
    x = np.column_stack([df["age"], df["dose"]] + [(df["site"] == s).to_numpy() / np.sqrt(2) for s in "ABC"])
    x = x[:, np.ptp(x, axis=0) > 1e-8]
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    t = m.treated
    zc = z.copy()
    zc[t] -= z[t].mean(0)
    zc[~t] -= z[~t].mean(0)
    g = np.linalg.pinv(zc.T @ zc / (len(df) - 2), rcond=1e-8)
    sex = df["sex"].to_numpy()
    free = set(np.flatnonzero(~t).tolist())
    assert np.array_equal(m.match_order, np.arange(t.sum()))  # data order without a score
    for a in m.match_order:
        row = m.treated_rows[a]
        eligible = np.array(sorted(c for c in free if sex[c] == sex[row]), dtype=int)
        got = m.match_matrix[a, 0]
        if eligible.size == 0:
            assert got == -1
            continue
        diff = z[eligible] - z[row]
        d = np.sqrt(np.einsum("ij,jk,ik->i", diff, g, diff).clip(0))
        assert got in eligible and d[eligible == got][0] <= d.min() + 1e-9 * (1 + d.min())
        free.discard(int(got))


def test_balance_table_without_weights_has_only_before():
    df = pd.DataFrame({"treat": [1, 1, 1, 0, 0, 0, 0], "x": [1.0, 2, 3, 2, 3, 4, 5], "g": list("ababbba")})
    bal = balance_table(df, treat="treat", covariates=["x", "g"])
    assert bal.after is None and list(bal.before.index) == ["x", "ga", "gb"]
    # hand-worked: SMD = (2 − 3.5) / sd(treated x) = −1.5 / 1; variance ratio 1 / (5/3)
    assert bal.before.loc["x", "smd"] == pytest.approx(-1.5)
    assert bal.before.loc["x", "var_ratio"] == pytest.approx(0.6)
    # binary level: proportion difference over sqrt(p(1-p)) of the treated
    p1, p0 = 2 / 3, 1 / 4
    assert bal.before.loc["ga", "smd"] == pytest.approx((p1 - p0) / np.sqrt(p1 * (1 - p1)))
    assert bal.before.loc["ga", "ecdf_max"] == pytest.approx(abs(p1 - p0))
    assert np.isnan(bal.before.loc["ga", "var_ratio"])
    # eCDF at the distinct values 1..5: |F1 − F0| = 1/3, 2/3 − 1/4, 1 − 1/2, 1 − 3/4, 0
    diffs = [1 / 3, 2 / 3 - 1 / 4, 1 - 1 / 2, 1 - 3 / 4, 0]
    assert bal.before.loc["x", "ecdf_mean"] == pytest.approx(np.mean(diffs))
    assert bal.before.loc["x", "ecdf_max"] == pytest.approx(max(diffs))


def test_bad_input_names_the_column_and_value():
    df = pd.DataFrame({"treat": [1, 0, 2, 0], "x": [1.0, 2, 3, 4], "b": [0, 1, 0, 1], "g": list("abab")})
    with pytest.raises(InputError, match="column 'treat'.*row 2 \\(value 2\\)"):
        match_controls(df, "treat", ["x"])
    df["treat"] = [1, 0, 1, 0]
    df.loc[1, "x"] = np.nan
    with pytest.raises(InputError, match="column 'x'.*row 1"):
        match_controls(df, "treat", ["x"])
    df["x"] = [1.0, 2, 3, 4.5]
    with pytest.raises(InputError, match="column 'b'.*binary"):
        match_controls(df, "treat", ["x"], caliper={"b": 1.0})
    with pytest.raises(InputError, match="column 'g'.*categorical"):
        match_controls(df, "treat", ["x"], caliper={"g": 1.0})
    with pytest.raises(InputError, match="no column 'nope' for a caliper"):
        match_controls(df, "treat", ["x"], caliper={"nope": 1.0})
    with pytest.raises(InputError, match="m_order"):
        match_controls(df, "treat", ["x"], m_order="closest")
    with pytest.raises(InputError, match="needs a propensity score"):
        match_controls(df, "treat", ["x"], distance="mahalanobis", caliper=0.2)
    with pytest.raises(InputError, match="needs a propensity score"):
        match_controls(df, "treat", ["x"], distance="euclidean", m_order="largest")
    with pytest.raises(InputError, match="ratio"):
        match_controls(df, "treat", ["x"], ratio=1.5)
    with pytest.raises(InputError, match="max_ratio"):
        match_controls(df, "treat", ["x"], ratio=2, max_ratio=2)
    with pytest.raises(InputError, match="non-negative"):
        match_controls(df, "treat", ["x"], caliper=-0.1)
    with pytest.raises(InputError, match="once"):
        match_controls(df, "treat", ["x"], treat="b")
    with pytest.raises(InputError, match="distance must be"):
        match_controls(df, "treat", ["x"], distance="probit")
    with pytest.raises(ModelError, match="no treated unit could be matched"):
        match_controls(df, treat="treat", covariates=["x"], exact="g", caliper={"x": 0.1})
    m = match_controls(df, treat="treat", covariates=["x"], distance="euclidean")  # the alias of DESIGN.md's name
    assert m.distance is None and len(m.matches) == 2


def test_results_hold_no_reference_to_the_callers_data():
    df = pd.DataFrame({"pid": ["a", "b", "c", "d", "e"], "treat": [1, 0, 1, 0, 0], "s": [0.9, 0.8, 0.3, 0.35, 0.5]})
    m = match_controls(df, "treat", distance="s", ids="pid")
    assert m.matches == {0: (1,), 2: (3,)}
    df.loc[0, "s"] = -5.0
    df.loc[1, "pid"] = "zz"
    assert m.distance[0] == 0.9 and m.ids[1] == "b"
    assert m.sets_frame()["patient_id"].tolist() == ["a", "b", "c", "d"]
