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


def test_user_add_creates_an_account_and_refuses_bad_ones(tmp_path):
    from typer.testing import CliRunner

    from allotrack.cli import app
    from allotrack.records.store import Store
    from allotrack.web.auth import authenticate

    url = f"sqlite:///{tmp_path / 'web.db'}"
    ok = CliRunner().invoke(app, ["user", "add", "admin", "--db", url], input="long enough pw\nlong enough pw\n")
    assert ok.exit_code == 0 and "created administrator 'admin'" in ok.output
    assert authenticate(Store(url).engine, "admin", "long enough pw") is not None
    no_centre = CliRunner().invoke(app, ["user", "add", "v", "--role", "viewer", "--db", url],
                                   input="long enough pw\nlong enough pw\n")  # fmt: skip
    assert no_centre.exit_code == 2 and "centre" in no_centre.output
    short = CliRunner().invoke(app, ["user", "add", "x", "--db", url], input="short\nshort\n")
    assert short.exit_code == 2 and "10 characters" in short.output
