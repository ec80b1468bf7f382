"""Kaplan–Meier against R survival::survfit (values written by tests/reference/survival_reference.R)."""

from __future__ import annotations

import pytest
from conftest import assert_close, dataset, reference, strip_stratum

import allotrack as at

CASES = reference()["kaplan_meier"]


def _fit(case):
    args = dict(case["args"])
    return at.kaplan_meier(
        dataset(case["data"]),
        time=args["time"],
        event=args["event"],
        by=args.get("by"),
        conf_type=args.get("conf_type", "log"),
        conf_level=args.get("conf_level", 0.95),
        entry=args.get("entry"),
        weights=args.get("weights"),
    )


def _same_groups(actual, expected_groups):
    assert [str(g) for g in actual] == [strip_stratum(g) for g in expected_groups]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_table_matches_survfit(case):
    fit = _fit(case)
    ref = case["table"]
    _same_groups(fit.table["group"], ref["group"])
    for col in ["time", "n_risk", "n_event", "n_censor", "survival", "std_err", "lower", "upper"]:
        assert_close(fit.table[col], ref[col], what=f"{case['name']} {col}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_at_matches_summary_extend(case):
    fit = _fit(case)
    out = fit.at(case["at"]["times"])
    ref = case["at"]["values"]
    _same_groups(out["group"], ref["group"])
    for col in ["time", "n_risk", "n_event", "n_censor", "survival", "std_err", "lower", "upper"]:
        assert_close(out[col], ref[col], what=f"{case['name']} at {col}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_median_matches_quantile_survfit(case):
    med = _fit(case).median()
    for col in ["median", "lower", "upper"]:
        assert_close(med[col], case["median"][col], what=f"{case['name']} median {col}")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_rmst_matches_print_rmean(case):
    rm = _fit(case).rmst(case["rmean"]["tau"])
    assert_close(rm["rmst"], case["rmean"]["rmean"], what="rmst")
    assert_close(rm["std_err"], case["rmean"]["se"], what="se(rmst)")
