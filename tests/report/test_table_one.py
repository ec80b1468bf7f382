"""table_one: gtsummary's layout and rules, p-values equal to R's tests (tests/reference/table_one_reference.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close, reference
from hypothesis import given, settings
from hypothesis import strategies as st

from allotrack.errors import InputError
from allotrack.report.table_one import quantile_type2, table_one

REF = reference("table_one_reference")


def test_quartiles_are_r_type_2():
    s = REF["summaries"]
    q1, med, q3 = quantile_type2(np.array(s["values"]), [0.25, 0.5, 0.75])
    assert_close([q1, med, q3], [s["q1"], s["median"], s["q3"]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=40), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]))
def test_type2_quantile_inverts_the_empirical_cdf(values, p):
    x = np.sort(np.array(values, dtype=float))
    q = quantile_type2(x, [p])[0]
    n = len(x)
    assert x[0] <= q <= x[-1]
    if 0 < p < 1 and (n * p) % 1:  # between jumps: the first value whose ECDF reaches p
        assert q == x[int(np.ceil(n * p)) - 1]


def _cohort() -> pd.DataFrame:
    # The demo study's sex pairs by age group (published counts, studies.md), plus a continuous variable.
    pairs = ["F→F"] * 5 + ["F→M"] * 4 + ["M→F"] * 6 + ["M→M"] * 5 + ["F→F"] * 5 + ["M→F"] * 2 + ["M→M"] * 2
    group = ["60–70"] * 20 + ["> 70"] * 9
    x_ties = REF["summaries"]["values"]
    return pd.DataFrame({
        "age_group": group,
        "sex_pair": pairs,
        "male": [p.endswith("M") for p in pairs],
        "score": (x_ties * 4)[:29],
    })  # fmt: skip


def test_layout_counts_and_percentages():
    t = table_one(_cohort(), by="age_group", variables=["sex_pair", "male"], levels={"age_group": ["60–70", "> 70"]})
    text = t.table
    assert list(text.columns) == ["Characteristic", "Overall (N = 29)¹", "60–70 (N = 20)¹", "> 70 (N = 9)¹", "p-value"]
    assert text["Characteristic"].tolist() == ["sex_pair", "F→F", "F→M", "M→F", "M→M", "male"]
    assert text.iloc[1, 1:4].tolist() == ["10 (34%)", "5 (25%)", "5 (56%)"]
    assert text.iloc[2, 1:4].tolist() == ["4 (14%)", "4 (20%)", "0 (0%)"]
    assert text.iloc[5, 1:4].tolist() == ["11 (38%)", "9 (45%)", "2 (22%)"]  # dichotomous: one row, "yes" counted
    case = next(c for c in REF["tables"] if c["name"] == "fisher_mst_sexpair")
    assert t.tests["sex_pair"].test == "fisher.test"
    assert_close(t.tests["sex_pair"].p_value, case["fisher_p"])
    assert text.iloc[0, 4].startswith(f"{t.tests['sex_pair'].p_value:.1f}") or text.iloc[0, 4][0] in "<>0"
    assert t.footnotes[0] == "1 n (%)"
    assert "Fisher's exact test" in " ".join(t.footnotes)


def test_continuous_rows_missing_and_tests():
    df = _cohort()
    df.loc[[0, 3], "score"] = np.nan
    t = table_one(df, by="age_group", variables=["score"], levels={"age_group": ["60–70", "> 70"]})
    first = df.loc[df.age_group == "60–70", "score"].dropna().to_numpy()
    q1, med, q3 = quantile_type2(first, [0.25, 0.5, 0.75])
    assert t.table.iloc[0, 2] == f"{med:.0f} ({q1:.0f}, {q3:.0f})"
    assert t.table["Characteristic"].tolist() == ["score", "Unknown"]
    assert t.table.iloc[1, 1:4].tolist() == ["2", "2", "0"]
    assert t.tests["score"].test == "wilcox.test"
    normal = table_one(df, by="age_group", variables=["score"], normal=["score"])
    assert normal.tests["score"].test == "t.test" and normal.footnotes[0] == "1 Mean (SD)"


def test_p_value_formatting_follows_style_pvalue():
    t = table_one(_cohort(), by="age_group", variables=["male"])
    p = t.tests["male"].p_value
    from allotrack.report.format import format_pvalue

    assert t.table["p-value"].iloc[0] == format_pvalue(p) + "²"


def test_table_one_errors_name_the_column():
    df = _cohort()
    with pytest.raises(InputError, match="column not found"):
        table_one(df, by="age_group", variables=["nope"])
    df.loc[2, "age_group"] = None
    with pytest.raises(InputError, match="grouping column has missing values"):
        table_one(df, by="age_group", variables=["male"])


def test_html_has_every_row_and_footnote():
    html = table_one(_cohort(), by="age_group", variables=["sex_pair", "male"]).to_html(caption="Table 1")
    assert html.count("<tr>") == 1 + 6 and "<caption>Table 1</caption>" in html and "Fisher" in html
