"""Baseline-table tests against R's chisq.test / fisher.test / wilcox.test / kruskal.test / t.test / aov
(the functions gtsummary::add_p() calls), plus hand-worked and property checks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st

from allotrack.errors import InputError
from allotrack.stats.contingency import (
    categorical_test,
    chisq_test,
    continuous_test,
    fisher_test,
    kruskal_test,
    t_test,
    wilcox_test,
)

REF = reference("table_one_reference")
TABLES = {c["name"]: c for c in REF["tables"]}
CONT = {c["name"]: c for c in REF["continuous"]}


@pytest.mark.parametrize("name", list(TABLES))
def test_fisher_and_chisq_match_r(name):
    case = TABLES[name]
    table = np.array(case["table"])
    assert_close(fisher_test(table).p_value, case["fisher_p"], what="fisher p")
    assert_close(chisq_test(table).statistic, case["chisq_statistic"], what="chisq")
    assert_close(chisq_test(table).p_value, case["chisq_p"], what="chisq p")
    chosen = categorical_test(table)
    assert chosen.test == case["chosen"]
    assert_close(chosen.p_value, case["fisher_p"] if chosen.test == "fisher.test" else case["chisq_p"])


@pytest.mark.parametrize("name", list(CONT))
def test_continuous_tests_match_r(name):
    case = CONT[name]
    groups = [np.array(g, dtype=float) for g in case["groups"]]
    result = continuous_test(groups, normal=case["test"] in ("t.test", "aov"))
    assert result.test == case["test"]
    assert_close(result.statistic, case["statistic"], what="statistic")
    assert_close(result.p_value, case["p"], what="p")


def test_fisher_2x2_by_hand():
    # [[3,1],[1,3]]: hypergeometric P(x) for x = 0..4 with margins 4,4 / 4,4 are 1,16,36,16,1 over 70;
    # tables at most as likely as the observed (16/70): x = 0,1,3,4 -> 34/70.
    assert fisher_test(np.array([[3, 1], [1, 3]])).p_value == pytest.approx(34 / 70, rel=1e-12)


def test_fisher_large_table_falls_back_to_monte_carlo_and_says_so():
    table = np.array([[12, 9, 14, 8, 11], [10, 13, 7, 15, 9], [8, 11, 12, 9, 13]])
    result = fisher_test(table, max_tables=1000)
    assert "Monte Carlo" in result.method
    exact = chisq_test(table).p_value  # same hypothesis; large counts, so close to the chi-square p
    assert abs(result.p_value - exact) < 0.05


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=3), min_size=2, max_size=3))
def test_fisher_p_is_a_probability_and_ignores_row_order(rows):
    table = np.array([r[: len(rows[0])] + [0] * (len(rows[0]) - len(r)) for r in rows])
    if (table.sum(axis=1) > 0).sum() < 2 or (table.sum(axis=0) > 0).sum() < 2:
        return
    p = fisher_test(table).p_value
    assert 0 < p <= 1
    assert fisher_test(table[::-1]).p_value == pytest.approx(p, rel=1e-9)
    assert fisher_test(table.T).p_value == pytest.approx(p, rel=1e-9)


def test_wilcoxon_statistic_is_w_of_the_first_group():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])
    assert wilcox_test(x, y).statistic == 0  # no x exceeds any y
    assert wilcox_test(y, x).statistic == 6
    assert wilcox_test(x, y).p_value == pytest.approx(0.2, rel=1e-12)  # 2 of C(5,2)=10 arrangements as extreme


def test_missing_values_are_dropped_not_counted():
    x = np.array([1.0, np.nan, 3.0, 2.0])
    y = np.array([5.0, 4.0, np.nan])
    assert wilcox_test(x, y).p_value == wilcox_test(x[~np.isnan(x)], y[~np.isnan(y)]).p_value
    assert t_test(x, y).p_value == t_test(np.array([1.0, 3.0, 2.0]), np.array([5.0, 4.0])).p_value


def test_bad_tables_and_groups_are_named():
    with pytest.raises(InputError, match="non-negative whole counts"):
        fisher_test(np.array([[1.5, 2], [3, 4]]))
    with pytest.raises(InputError, match="at least two groups"):
        kruskal_test([np.array([1.0, 2.0]), np.array([np.nan])])
