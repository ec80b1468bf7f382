"""The Kaplan–Meier figure: files written, curves drawn, risk table equal to R's numbers at risk."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
from conftest import dataset

import allotrack as at


def test_km_plot_writes_png_and_svg_with_aligned_risk_table(tmp_path):
    data = dataset("lung")
    fit = at.kaplan_meier(data, "time", "event", by="sex")
    lr = at.logrank_test(data, "time", "event", by="sex")
    png, svg = tmp_path / "km.png", tmp_path / "km.svg"
    fig = fit.plot(pvalue=lr.p_value, breaks=[0, 250, 500, 750, 1000], save=[png, svg])
    assert png.stat().st_size > 10_000 and svg.read_text().lstrip().startswith("<?xml")
    main, table = fig.axes
    # two curves with CI bands and censor marks
    assert len([line for line in main.lines if line.get_drawstyle().startswith("steps")]) == 2
    texts = [t.get_text() for t in main.texts]
    assert 0.0015 < lr.p_value < 0.0025 and texts == ["Log-rank p=0.002"]
    # risk table numbers are summary(fit, times)$n.risk, placed at the x-axis ticks
    numbers = [(t.get_position()[0], t.get_text()) for t in table.texts]
    expected = fit.at([0, 250, 500, 750, 1000])
    assert [n for _, n in numbers] == [f"{v:.0f}" for v in expected["n_risk"]]
    assert sorted({x for x, _ in numbers}) == [0, 250, 500, 750, 1000]
    assert np.allclose(main.get_xlim(), table.get_xlim())


def test_cif_plot_and_stacked_plot(tmp_path):
    from allotrack.report.figures import plot_stacked_incidence

    data = dataset("myeloid_cir")
    fit = at.cumulative_incidence(data, "cir_time", "cir_cause", by="trt")
    gray = at.gray_test(data, "cir_time", "cir_cause", by="trt", cause=1)
    fig = fit.plot(cause=1, pvalue=gray.p_value, breaks=[0, 500, 1000, 1500, 2000], save=tmp_path / "cif.png")
    main, table = fig.axes
    assert [t.get_text() for t in main.texts] == ["Gray's test p=0.7"]
    # numbers at risk equal the all-cause Kaplan–Meier risk sets of each arm
    km = at.kaplan_meier(data.assign(any_event=(data["cir_cause"] > 0).astype(int)), "cir_time", "any_event", by="trt")
    expected = [f"{v:.0f}" for v in km.at([0, 500, 1000, 1500, 2000])["n_risk"]]
    assert [t.get_text() for t in table.texts] == expected
    stacked = plot_stacked_incidence(fit, group="B", save=tmp_path / "stack.svg")
    heights = [np.asarray(p.get_paths()[0].vertices[:, 1]).max() for p in stacked.axes[0].collections]
    assert len(heights) == 3 and abs(max(heights) - 1.0) < 1e-12  # relapse + NRM + remainder reach 1
    assert (tmp_path / "cif.png").stat().st_size > 10_000 and (tmp_path / "stack.svg").exists()
