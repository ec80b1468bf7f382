"""Curves are labelled by their group, not by position: the plan's order of levels (not alphabetical) reorders the
curves, the legend and the numbers at risk together (the review found "AML" drawn with ALL's curve)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import allotrack as at
from allotrack.report.figures import plot_cumulative_incidence, plot_survival

DATA = pd.DataFrame({"time": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "status": [1, 0, 1, 1, 2, 1, 0, 1, 2, 1, 1, 0],
                     "g": ["ZZ"] * 3 + ["AA"] * 9})  # fmt: skip


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _line_ends(fig) -> list[float]:
    """The last value of each labelled curve, in drawing order (censor marks and guides have no label)."""
    return [float(line.get_ydata()[-1]) for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]


def test_km_curves_follow_the_given_level_order_with_their_own_numbers_at_risk():
    d = DATA.assign(status=(DATA["status"] == 1).astype(int))
    fit = at.kaplan_meier(d, "time", "status", by="g")
    fig = plot_survival(fit, labels=["ZZ", "AA"])
    assert _legend(fig) == ["ZZ", "AA"]
    zz, aa = (fit.curves[[str(c.label) for c in fit.curves].index(g)] for g in ("ZZ", "AA"))
    assert np.allclose(_line_ends(fig), [zz.surv[-1], aa.surv[-1]])
    risk_rows = [t.get_text() for t in fig.axes[1].texts if t.get_text().isdigit()]
    assert risk_rows[0] == "3" and "9" in risk_rows  # ZZ's 3 patients on the first row


def test_cif_curves_follow_the_given_level_order():
    fit = at.cumulative_incidence(DATA, "time", "status", by="g")
    fig = plot_cumulative_incidence(fit, cause=1, labels=["ZZ", "AA"])
    assert _legend(fig) == ["ZZ", "AA"]
    ends = {str(c.group): float(c.estimate[-1]) for c in fit.curves if c.cause == 1}
    assert np.allclose(_line_ends(fig), [ends["ZZ"], ends["AA"]])
