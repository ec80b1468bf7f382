"""The CLI front door."""

from __future__ import annotations

from typer.testing import CliRunner

from allotrack.cli import app


def test_example_prints_results_and_saves_figure(tmp_path):
    result = CliRunner().invoke(app, ["example", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "646 patients, 320 deaths" in result.output
    assert "Log-rank test: chi-square 9.590 on 1 df, p = 0.002" in result.output
    assert (tmp_path / "myeloid_km.png").stat().st_size > 10_000
    assert (tmp_path / "myeloid_km.svg").exists()
