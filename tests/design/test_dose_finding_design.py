"""Dose finding (allotrack.design.dose_finding).

* 3 + 3: every combination of DLTs in a cohort of 3 and of 6 (and the incomplete cohorts) against a hand-written
  table of the classic rules, and every pair of cohorts at one dose.
* BOIN boundaries: λ_e, λ_d equal the published values of Liu & Yuan (2015) for φ = 0.20, 0.25, 0.30 (3 decimals),
  the per-n decision table equals the published one for φ = 0.30 (n = 1 … 12), and the whole table for n = 1 … 18
  (and 30) equals the closed form written out in R (tests/reference/dose_finding_reference.R → .json), which the
  script also checked against BOIN 2.7.2's own get.boundary (see "boin_check" in the JSON).
* MTD selection against the select.mtd rules written out in R (checked there against BOIN 2.7.2's select.mtd);
  isotonic regression properties (hypothesis) against a brute-force pooling.
* dose_decisions on DLT records, dose_response against allotrack.stats.jonckheere_terpstra and pandas.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import as_float, assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from allotrack.design.dose_finding import (
    DEESCALATE,
    ELIMINATE,
    ESCALATE,
    EXPAND,
    NOT_TREATED,
    STAY,
    boin_boundaries,
    dose_decision,
    dose_decisions,
    dose_response,
    isotonic_regression,
    select_mtd,
    three_plus_three,
)
from allotrack.errors import InputError
from allotrack.stats import jonckheere_terpstra

REF = reference("dose_finding_reference")

# ---------------------------------------------------------------------------------------------------- 3 + 3

# (patients treated at the dose, DLTs among them) -> decision; the classic rules written out by hand
THREE_PLUS_THREE = {
    (3, 0): ESCALATE, (3, 1): EXPAND, (3, 2): DEESCALATE, (3, 3): DEESCALATE,
    (6, 0): ESCALATE, (6, 1): ESCALATE, (6, 2): DEESCALATE, (6, 3): DEESCALATE, (6, 4): DEESCALATE,
    (6, 5): DEESCALATE, (6, 6): DEESCALATE,
    # cohorts still being filled
    (0, 0): STAY, (1, 0): STAY, (1, 1): STAY, (2, 0): STAY, (2, 1): STAY, (2, 2): DEESCALATE,
    (4, 0): STAY, (4, 1): STAY, (4, 2): DEESCALATE, (4, 3): DEESCALATE, (4, 4): DEESCALATE,
    (5, 0): STAY, (5, 1): STAY, (5, 2): DEESCALATE, (5, 3): DEESCALATE, (5, 4): DEESCALATE, (5, 5): DEESCALATE,
}  # fmt: skip


def test_three_plus_three_every_combination():
    assert set(THREE_PLUS_THREE) == {(n, y) for n in range(7) for y in range(n + 1)}
    for (n, y), decision in THREE_PLUS_THREE.items():
        assert three_plus_three(n, y) == decision, (n, y)
        assert dose_decision(n, y, design="3+3") == decision


@pytest.mark.parametrize(("first", "second"), [(a, b) for a in range(4) for b in range(4)])
def test_three_plus_three_two_cohorts_at_a_dose(first, second):
    """Cohort 1 of 3 with ``first`` DLTs; if expanded, cohort 2 of 3 with ``second`` DLTs."""
    decision = three_plus_three(3, first)
    expected_first = {0: ESCALATE, 1: EXPAND, 2: DEESCALATE, 3: DEESCALATE}[first]
    assert decision == expected_first
    if decision == EXPAND:
        expected = ESCALATE if second == 0 else DEESCALATE  # 1/6 escalate, >= 2/6 de-escalate
        assert three_plus_three(6, first + second) == expected


@pytest.mark.parametrize(("n", "y", "column"), [(7, 0, "n_treated"), (3, 4, "n_dlt"), (-1, 0, "n_treated"),
                                                (3, 1.5, "n_dlt"), (True, 0, "n_treated")])  # fmt: skip
def test_three_plus_three_bad_input(n, y, column):
    with pytest.raises(InputError) as err:
        three_plus_three(n, y)
    assert err.value.column == column


# ----------------------------------------------------------------------------------------------------- BOIN

# Liu & Yuan (2015), λ_e and λ_d for φ1 = 0.6 φ, φ2 = 1.4 φ, as published (3 decimals). They agree with the closed
# form to within 0.001: all are rounded except λ_d = 0.35852 for φ = 0.30, printed as 0.358 (truncated).
PUBLISHED_LAMBDAS = {0.20: (0.157, 0.238), 0.25: (0.197, 0.298), 0.30: (0.236, 0.358)}

# the BOIN decision table for φ = 0.30 as published (Yuan, Hess, Hilsenbeck & Gilbert 2016, Clin Cancer Res
# 22:4291, Table 1; the BOIN tutorial): n = 1 … 12; None where no elimination
PUBLISHED_TABLE_030 = {
    "escalate_if_at_most": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
    "deescalate_if_at_least": [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5],
    "eliminate_if_at_least": [None, None, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7],
}


@pytest.mark.parametrize("target", list(PUBLISHED_LAMBDAS))
def test_boin_lambdas_equal_the_published_table(target):
    b = boin_boundaries(target)
    lam_e, lam_d = PUBLISHED_LAMBDAS[target]
    assert abs(b.lambda_e - lam_e) <= 0.001 and abs(b.lambda_d - lam_d) <= 0.001
    assert (round(b.lambda_e, 3), math.floor(b.lambda_d * 1000) / 1000) == (lam_e, lam_d)


def test_boin_decision_table_equals_the_published_one():
    table = boin_boundaries(0.30, max_n=12).table
    for column, values in PUBLISHED_TABLE_030.items():
        assert table[column].astype(object).where(table[column].notna(), None).tolist() == values, column


@pytest.mark.parametrize("case", REF["boundaries"], ids=lambda c: f"{c['target']:.3g}-{c['p_saf']:.3g}")
def test_boin_boundaries_match_r(case):
    b = boin_boundaries(case["target"], max_n=len(case["n"]), p_saf=case["p_saf"], p_tox=case["p_tox"],
                        cutoff_eli=case["cutoff_eli"])  # fmt: skip
    assert_close(b.lambda_e, case["lambda_e"], what="lambda_e")
    assert_close(b.lambda_d, case["lambda_d"], what="lambda_d")
    table = b.to_frame()
    assert table["n"].tolist() == case["n"]
    assert table["escalate_if_at_most"].tolist() == case["escalate_max"]
    assert table["deescalate_if_at_least"].tolist() == case["deescalate_min"]
    assert_close(table["eliminate_if_at_least"].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
                 case["eliminate_min"], what="elimination")  # fmt: skip


def test_boin_reference_was_checked_against_the_package():
    assert REF["boin_check"].startswith("BOIN")  # the script compared every case with BOIN 2.7.2


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0.15, 0.2, 0.25, 0.3, 1 / 3, 0.4]), st.integers(1, 40), st.data())
def test_boin_decision_follows_its_definition(target, n, data):
    y = data.draw(st.integers(0, n))
    b = boin_boundaries(target)
    decision = b.decision(n, y)
    assert dose_decision(n, y, design="boin", target=target) == decision
    posterior = 1 - stats.beta.cdf(target, y + 1, n - y + 1)
    if n >= 3 and posterior > 0.95:
        assert decision == ELIMINATE
    elif y / n <= b.lambda_e:
        assert decision == ESCALATE
    elif y / n >= b.lambda_d:
        assert decision == DEESCALATE
    else:
        assert decision == STAY


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [({"target": 0.7}, "target"), ({"target": 0.3, "p_saf": 0.29}, "p_saf"), ({"target": 0.3, "p_tox": 0.31}, "p_tox"),
     ({"target": 0.3, "cutoff_eli": 1.2}, "cutoff_eli"), ({"target": "0.3"}, "target")],
)  # fmt: skip
def test_boin_bad_input(kwargs, column):
    with pytest.raises(InputError) as err:
        boin_boundaries(**kwargs)
    assert err.value.column == column
    with pytest.raises(InputError, match="target"):
        dose_decision(3, 0, design="boin")


# ---------------------------------------------------------------------------------------------- MTD, PAVA


@pytest.mark.parametrize("case", REF["select_mtd"], ids=lambda c: c["name"])
def test_select_mtd_matches_r(case):
    res = select_mtd(case["n"], case["y"], case["target"], cutoff_eli=case["cutoff_eli"])
    expected = None if case["mtd"] is None else case["mtd"] - 1
    assert res.mtd == expected
    assert list(res.eliminated) == case["eliminated"]
    assert_close(res.isotonic_boin, case["isotonic_boin"], what="BOIN isotonic estimate")
    assert_close(res.isotonic, case["isotonic"], what="isotonic MLE")
    frame = res.to_frame()
    assert frame["selected"].sum() == (0 if expected is None else 1)


def _brute_force_pava(x, w):
    """BOIN's pava(): merge the first adjacent violating pair of level sets until none remains."""
    x = np.asarray(x, float).copy()
    w = np.asarray(w, float)
    sets = np.arange(x.size)
    while True:
        viol = np.flatnonzero(np.diff(x) < 0)
        if viol.size == 0:
            return x
        i = viol[0]
        members = (sets == sets[i]) | (sets == sets[i + 1])
        x[members] = (x[members] * w[members]).sum() / w[members].sum()
        sets[members] = sets[i]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0.1, 20)), min_size=1, max_size=10))
def test_isotonic_regression_properties(pairs):
    x = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    fit = isotonic_regression(x, w)
    assert np.all(np.diff(fit) >= -1e-12)
    assert (fit * w).sum() == pytest.approx((x * w).sum(), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(fit, _brute_force_pava(x, w), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(isotonic_regression(np.sort(x), w), np.sort(x))


def test_select_mtd_tie_rule():
    # one pooled block below the target: the highest dose; above the target: the lowest (BOIN's documentation)
    below = select_mtd([3, 3, 3], [0, 0, 0], 0.3)
    assert below.mtd == 2 and len(set(np.round(below.isotonic_boin, 12))) == 1
    above = select_mtd([9, 9, 9], [4, 3, 3], 0.3)
    assert above.mtd == 0 and len(set(np.round(above.isotonic_boin, 12))) == 1


def test_select_mtd_bad_input():
    with pytest.raises(InputError) as err:
        select_mtd([3, 3], [4, 0], 0.3)
    assert err.value.column == "n_dlt" and err.value.rows == (0,)
    with pytest.raises(InputError):
        select_mtd([3, 3], [0], 0.3)


# ------------------------------------------------------------------------------------------- dose_decisions


def _records(n, y, labels):
    rows = []
    pid = 0
    for level, ni, yi in zip(labels, n, y, strict=True):
        for j in range(ni):
            rows.append({"patient_id": f"P{pid:03d}", "dose_level": level, "dlt": int(j < yi)})
            pid += 1
    return pd.DataFrame(rows, columns=["patient_id", "dose_level", "dlt"])


def test_dose_decisions_boin_doc_example():
    case = next(c for c in REF["select_mtd"] if c["name"] == "boin_doc_example")
    labels = ["10 mg", "20 mg", "40 mg", "80 mg", "160 mg"]
    records = _records(case["n"], case["y"], labels).sample(frac=1.0, random_state=3)
    res = dose_decisions(records, levels=labels, design="boin", target=0.3, current_level="80 mg")
    table = res.to_frame()
    assert table["level"].tolist() == labels
    assert table["n"].tolist() == case["n"] and table["dlt"].tolist() == case["y"]
    b = boin_boundaries(0.3)
    expected = [b.decision(n, y) if n else NOT_TREATED for n, y in zip(case["n"], case["y"], strict=True)]
    assert table["decision"].tolist() == expected == [ESCALATE, ESCALATE, STAY, DEESCALATE, NOT_TREATED]
    assert_close(table["isotonic_boin"], case["isotonic_boin"])
    assert_close(table["isotonic"], case["isotonic"])
    assert res.mtd == labels[case["mtd"] - 1] == "40 mg" and res.mtd_status == "selected"
    assert res.next_level == "40 mg" and not res.stop  # 4/9 at 80 mg >= lambda_d = 0.359: de-escalate
    assert "MTD '40 mg'" in repr(res)


def test_dose_decisions_boin_elimination_and_next_level():
    labels = [1, 2, 3, 4]
    records = _records([3, 6, 3, 0], [0, 1, 3, 0], labels)
    res = dose_decisions(records, design="boin", target=0.3, current_level=3, levels=labels)
    table = res.table
    assert table["decision"].tolist() == [ESCALATE, ESCALATE, ELIMINATE, NOT_TREATED]
    assert table["eliminated"].tolist() == [False, False, True, True]
    assert res.next_level == 2 and res.mtd == 2
    at_two = dose_decisions(records, design="boin", target=0.3, current_level=2, levels=labels)
    assert at_two.next_level == 2  # escalation blocked: level 3 is eliminated
    lowest = dose_decisions(_records([3], [3], [1]), design="boin", target=0.3, current_level=1)
    assert lowest.stop and lowest.next_level is None and lowest.mtd is None
    assert lowest.mtd_status == "the lowest dose level is eliminated"


def test_dose_decisions_three_plus_three():
    labels = ["DL1", "DL2", "DL3", "DL4"]
    records = _records([3, 6, 3, 0], [0, 1, 2, 0], labels)
    res = dose_decisions(records, levels=labels, design="3+3", current_level="DL3")
    assert res.table["decision"].tolist() == [ESCALATE, ESCALATE, DEESCALATE, NOT_TREATED]
    assert res.table["eliminated"].tolist() == [False, False, True, True]
    assert res.mtd == "DL2" and res.stop and res.next_level is None
    assert res.boundaries is None and res.target is None
    # the dose below the exceeded one has only 3 patients: expand it, no MTD yet
    pending = dose_decisions(_records([3, 3, 3], [0, 0, 2], labels[:3]), levels=labels[:3], design="3+3",
                             current_level="DL3")  # fmt: skip
    assert pending.mtd is None and pending.next_level == "DL2" and "not yet determined" in pending.mtd_status
    expanding = dose_decisions(_records([3, 3], [0, 1], labels[:2]), levels=labels, design="3+3", current_level="DL2")
    assert expanding.next_level == "DL2" and expanding.mtd is None and "not reached" in expanding.mtd_status
    escalating = dose_decisions(_records([3, 3], [0, 0], labels[:2]), levels=labels, design="3+3", current_level="DL2")
    assert escalating.next_level == "DL3"
    top = dose_decisions(_records([3, 6], [0, 1], labels[:2]), levels=labels[:2], design="3+3", current_level="DL2")
    assert top.stop and top.next_level is None
    too_toxic = dose_decisions(_records([3], [2], labels[:1]), levels=labels, design="3+3", current_level="DL1")
    assert too_toxic.stop and too_toxic.mtd is None and too_toxic.mtd_status == "the lowest dose level exceeds the MTD"


def test_dose_decisions_levels_default_and_columns():
    records = _records([3, 3], [0, 1], [2.5, 5.0]).rename(columns={"patient_id": "id", "dose_level": "dose"})
    res = dose_decisions(records, design="boin", target=0.25, patient_id="id", dose_level="dose")
    assert res.levels == (2.5, 5.0)
    assert res.table["n"].tolist() == [3, 3]
    as_mapping = {c: records[c].to_numpy() for c in records.columns}
    again = dose_decisions(as_mapping, design="boin", target=0.25, patient_id="id", dose_level="dose")
    pd.testing.assert_frame_equal(again.table, res.table)


@pytest.mark.parametrize(
    ("mutate", "kwargs", "column"),
    [
        (lambda d: d.assign(patient_id=["P000"] * len(d)), {}, "patient_id"),
        (lambda d: d.assign(dlt=[2, *d["dlt"].tolist()[1:]]), {}, "dlt"),
        (lambda d: d.assign(dlt=[None, *d["dlt"].tolist()[1:]]), {}, "dlt"),
        (lambda d: d.assign(dose_level=[9, *d["dose_level"].tolist()[1:]]), {"levels": [1, 2]}, "dose_level"),
        (lambda d: d, {"design": "crm"}, "design"),
        (lambda d: d, {"target": None}, "target"),
        (lambda d: d, {"current_level": 7}, "current_level"),
        (lambda d: d.assign(dose_level=d["dose_level"].astype(str)), {}, "dose_level"),
    ],
)
def test_dose_decisions_bad_input(mutate, kwargs, column):
    records = mutate(_records([3, 3], [0, 1], [1, 2]))
    args = {"design": "boin", "target": 0.3, **kwargs}
    with pytest.raises(InputError) as err:
        dose_decisions(records, **args)
    assert err.value.column == column


def test_three_plus_three_refuses_more_than_six_at_a_level():
    with pytest.raises(InputError, match="at most 6"):
        dose_decisions(_records([7], [0], [1]), design="3+3")


# -------------------------------------------------------------------------------------------- dose_response


def test_dose_response_uses_jonckheere_terpstra():
    rng = np.random.default_rng(11)
    levels = ["low", "mid", "high"]
    frame = pd.DataFrame(
        {
            "dose_level": np.repeat(levels, [6, 7, 8]),
            "nk_day30": np.concatenate([rng.normal(m, 40, k) for m, k in ((150, 6), (190, 7), (240, 8))]).round(1),
        }
    )
    frame.loc[[2, 9], "nk_day30"] = np.nan
    res = dose_response(frame, "nk_day30", "dose_level", levels=levels, alternative="increasing")
    direct = jonckheere_terpstra("nk_day30", pd.Categorical(frame["dose_level"], categories=levels, ordered=True),
                                 frame, alternative="increasing")  # fmt: skip
    assert res.trend.statistic == direct.statistic and res.trend.p_value == direct.p_value
    assert res.trend.groups == tuple(levels)
    table = res.to_frame().set_index("level")
    grouped = frame.groupby("dose_level")["nk_day30"]
    for level in levels:
        values = grouped.get_group(level).dropna()
        assert table.loc[level, "n"] == values.size
        assert table.loc[level, "mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert table.loc[level, "sd"] == pytest.approx(values.std(), rel=1e-12)
        assert table.loc[level, "median"] == pytest.approx(values.median(), rel=1e-12)
        assert table.loc[level, "q1"] == pytest.approx(values.quantile(0.25), rel=1e-12)  # R type 7
    assert table["n_missing"].tolist() == [1, 1, 0]
    assert res.to_frame().attrs["p_value"] == res.trend.p_value
    assert "Jonckheere" in repr(res)


def test_dose_response_numeric_levels_and_errors():
    data = {"dose": [1, 1, 2, 2, 3, 3], "value": [1.0, 2.0, 2.5, 3.0, 4.0, 5.0]}
    res = dose_response(data, "value", "dose")
    assert res.levels == (1, 2, 3) and res.trend.exact
    assert res.trend.p_value == jonckheere_terpstra("value", "dose", data).p_value
    with pytest.raises(InputError) as err:
        dose_response({"dose": ["a", "b"], "value": [1.0, 2.0]}, "value", "dose")
    assert err.value.column == "dose"
    with pytest.raises(InputError) as err:
        dose_response({"dose": [1, 2], "value": ["x", 2.0]}, "value", "dose")
    assert err.value.column == "value"
    with pytest.raises(InputError) as err:
        dose_response(data, "value", "dose", levels=[1, 2])
    assert err.value.column == "dose"


def test_results_are_values():
    records = _records([3, 3], [0, 1], [1, 2])
    before = records.copy()
    res = dose_decisions(records, design="boin", target=0.3)
    pd.testing.assert_frame_equal(records, before)
    frame = res.to_frame()
    frame.loc[0, "n"] = 99
    assert res.table.loc[0, "n"] == 3
    assert_close(boin_boundaries(0.3).lambda_e, as_float([0.2364907]), rtol=1e-6)
