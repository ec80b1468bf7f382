"""Formatting follows gtsummary's style_* functions and cards::round5 (r-definitions §3)."""

from __future__ import annotations

import pytest

from allotrack.report.format import format_percent, format_pvalue, format_ratio, round5


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.95, ">0.9"), (0.9, "0.9"), (0.25, "0.3"), (0.15, "0.2"), (0.149, "0.15"), (0.1, "0.10"),
        (0.0996, "0.10"), (0.0994, "0.10"), (0.0949, "0.095"), (0.042, "0.042"), (0.001, "0.001"), (0.000999, "<0.001"),
        (0.0, "<0.001"), (1.0, ">0.9"),
    ],
)  # fmt: skip
def test_style_pvalue_default(p, text):
    assert format_pvalue(p) == text


def test_style_pvalue_two_digits_and_plot_label():
    assert format_pvalue(0.995, digits=2) == ">0.99"
    assert format_pvalue(0.456, digits=2) == "0.46"
    assert format_pvalue(0.0456, digits=2) == "0.046"
    assert format_pvalue(0.042, prepend_p=True) == "p=0.042"
    assert format_pvalue(0.0001, prepend_p=True) == "p<0.001"
    with pytest.raises(ValueError):
        format_pvalue(1.5)


def test_round5_is_half_away_from_zero():
    assert round5(0.125, 2) == 0.13  # Python's round gives 0.12
    assert round5(-2.5, 0) == -3
    assert round5(2.675, 2) == 2.68  # binary 2.67499999... still rounds up thanks to the sqrt(eps) fuzz


@pytest.mark.parametrize(("x", "text"), [(0.854, "0.85"), (1.234, "1.23"), (12.34, "12.3"), (123.4, "123")])
def test_style_ratio(x, text):
    assert format_ratio(x) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.0, "0"), (0.0005, "<0.1"), (0.0123, "1.2"), (0.0996, "10"), (0.456, "46"), (1.0, "100")],
)
def test_style_percent(x, text):
    assert format_percent(x) == text


def test_negative_percentages_keep_their_sign_and_size():
    """A risk difference of −3.7 % is "−3.7", not "<0.1" (the binary table showed 26 % vs 30 % as "<0.1%")."""
    assert format_percent(-0.037) == "−3.7"
    assert format_percent(-0.18) == "−18"
    assert format_percent(-0.0004) == ">−0.1"
    assert format_percent(0.037) == "3.7"
