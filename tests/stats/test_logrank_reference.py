"""Log-rank / G-rho tests against R survival::survdiff (tests/reference/survival_reference.R)."""

from __future__ import annotations

import pytest
from conftest import assert_close, dataset, reference, strip_stratum

import allotrack as at

CASES = reference()["logrank"]
TIME_EVENT = {"myeloid": ("futime", "death")}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_survdiff(case):
    args = case["args"]
    time, event = TIME_EVENT.get(case["data"], ("time", "event"))
    trend = case["trend"]["scores"] if "trend" in case else False
    res = at.logrank_test(
        dataset(case["data"]),
        time,
        event,
        by=args["by"],
        strata=args.get("strata"),
        rho=args["rho"],
        trend=trend,
    )
    assert [str(g) for g in res.table["group"]] == [strip_stratum(g) for g in case["groups"]]
    assert_close(res.table["observed"], case["observed"], what="observed")
    assert_close(res.table["expected"], case["expected"], what="expected")
    assert_close(res.statistic, case["statistic"], what="chisq")
    assert res.dof == case["dof"]
    assert_close(res.p_value, case["p_value"], what="p")
    if "trend" in case:
        assert_close(res.trend.statistic, case["trend"]["statistic"], what="trend chisq")
        assert_close(res.trend.p_value, case["trend"]["p_value"], what="trend p")
