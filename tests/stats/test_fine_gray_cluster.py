"""Cluster-robust Fine–Gray variance against R crrSC 1.1.2 ``crrc`` (Zhou, Fine, Latouche & Labopin 2012) with
cmprsk ``crr`` alongside (tests/reference/fine_gray_cluster_reference.R; the data are in the json)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, norm

import allotrack as at
from allotrack.errors import InputError

REF = reference("fine_gray_cluster_reference")
CASES = REF["fine_gray_cluster"]
IDS = [c["name"] for c in CASES]


def _frame(case) -> pd.DataFrame:
    return pd.DataFrame({k: np.atleast_1d(v) for k, v in case["data"].items()})


def _fit(case, data=None, **kw):
    d = _frame(case) if data is None else data
    covariates = list(np.atleast_1d(case["covariates"]))
    return at.fine_gray(d, "time", "cause", covariates=covariates, cause=case["failcode"], gtol=1e-12, **kw)


def _matrix(rows) -> np.ndarray:
    return np.array([np.atleast_1d(r) for r in rows], dtype=float)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cluster_variance_equals_crrc(case):
    m = _fit(case, cluster=case["cluster"])
    assert m.n_clusters == case["n_clusters"]
    assert m.n == case["n"]
    assert_close(m.coef, case["coef"], what="coef vs crrc")
    assert_close(m.coef, case["crr_coef"], what="coef vs crr")
    assert_close(m.var.ravel(), _matrix(case["var"]).ravel(), what="var vs crrc")
    assert_close(m.summary["se"], case["se"], what="se vs crrc")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_without_cluster_is_crr(case):
    m = _fit(case)
    assert m.n_clusters is None
    assert "clusters=" not in repr(m)
    assert_close(m.coef, case["crr_coef"], what="coef vs crr")
    assert_close(m.var.ravel(), _matrix(case["crr_var"]).ravel(), what="var vs crr")
    assert_close(m.summary["se"], case["crr_se"], what="se vs crr")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_summary_and_wald_test_use_the_cluster_variance(case):
    m = _fit(case, cluster=case["cluster"], conf_level=0.9)
    plain = _fit(case, conf_level=0.9)
    np.testing.assert_array_equal(m.coef, plain.coef)
    se = np.sqrt(np.diag(m.var))
    z = m.coef / se
    zq = norm.ppf(0.95)
    np.testing.assert_allclose(m.summary["se"], se, rtol=1e-14)
    np.testing.assert_allclose(m.summary["z"], z, rtol=1e-14)
    np.testing.assert_allclose(m.summary["p"], 2 * norm.sf(np.abs(z)), rtol=1e-12)
    np.testing.assert_allclose(m.summary["shr_lower"], np.exp(m.coef - zq * se), rtol=1e-12)
    np.testing.assert_allclose(m.summary["shr_upper"], np.exp(m.coef + zq * se), rtol=1e-12)
    stat = float(m.coef @ np.linalg.solve(m.var, m.coef))
    wald = m.wald_test()
    assert wald.statistic == pytest.approx(stat, rel=1e-12)
    assert wald.p_value == pytest.approx(float(chi2.sf(stat, m.coef.size)), rel=1e-10)
    assert wald.statistic != pytest.approx(plain.wald_test().statistic, rel=1e-6)
    assert f"clusters={case['n_clusters']}" in repr(m)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_singleton_clusters_give_the_unclustered_variance(case):
    d = _frame(case)
    d["one"] = np.arange(len(d))[::-1]
    m = _fit(case, data=d, cluster="one")
    plain = _fit(case, data=d)
    assert m.n_clusters == len(d)
    np.testing.assert_allclose(m.var, plain.var, rtol=1e-12)
    assert_close(m.var.ravel(), _matrix(case["crr_var"]).ravel(), what="singletons vs crr")


def test_cluster_as_array_and_matched_sets():
    case = next(c for c in CASES if c["name"] == "matched_sets")
    d = _frame(case)
    by_name = _fit(case, data=d, cluster="set")
    by_array = _fit(case, data=d, cluster=d["set"].to_numpy())
    np.testing.assert_array_equal(by_array.var, by_name.var)
    assert by_name.summary.index.tolist() == ["treated"]


CLUSTERED = next(c for c in CASES if c["name"] == "clustered_cause1")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from(CASES))
def test_variance_invariant_to_relabelling_clusters_and_permuting_rows(rnd, case):
    d = _frame(case)
    base = _fit(case, data=d, cluster=case["cluster"])
    labels = sorted(set(d[case["cluster"]]))
    new = [f"k{i}" for i in range(len(labels))]
    rnd.shuffle(new)
    relabel = dict(zip(labels, new, strict=True))
    perm = list(range(len(d)))
    rnd.shuffle(perm)
    shuffled = d.iloc[perm].reset_index(drop=True)
    shuffled[case["cluster"]] = shuffled[case["cluster"]].map(relabel)
    m = _fit(case, data=shuffled, cluster=case["cluster"])
    assert m.n_clusters == base.n_clusters
    np.testing.assert_allclose(m.coef, base.coef, rtol=1e-9)
    np.testing.assert_allclose(m.var, base.var, rtol=1e-9)


@pytest.mark.parametrize("missing", [None, np.nan])
def test_missing_cluster_value_is_an_input_error(missing):
    d = _frame(CLUSTERED).astype({"cluster": object})
    d.loc[7, "cluster"] = missing
    with pytest.raises(InputError, match=r"column 'cluster'.*row 7") as info:
        _fit(CLUSTERED, data=d, cluster="cluster")
    assert info.value.column == "cluster"
    assert info.value.rows == (7,)
    assert "must not be missing" in str(info.value)


def test_cluster_errors():
    d = _frame(CLUSTERED)
    with pytest.raises(InputError, match="no column 'centre'"):
        _fit(CLUSTERED, data=d, cluster="centre")
    with pytest.raises(InputError, match="different lengths"):
        _fit(CLUSTERED, data=d, cluster=np.arange(len(d) - 1))
