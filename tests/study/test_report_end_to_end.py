"""`allotrack demo` end to end: the embedded store, an HTML report whose baseline table shows the published
counts, a DOCX (read back with python-docx) holding the same tables, and the analysis dataset."""

from __future__ import annotations

import re
from functools import cache
from html import unescape
from pathlib import Path

import docx
import pandas as pd
from typer.testing import CliRunner

from allotrack.cli import app


@cache
def _demo(tmp: str) -> Path:
    result = CliRunner().invoke(app, ["demo", "--out", tmp])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output.replace("\n", "")
    return Path(tmp)


def _html_rows(html: str) -> list[list[str]]:
    table = html[html.index('<table class="table-one">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    return [[unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)] for r in rows]


def test_demo_writes_store_html_docx_and_dataset(tmp_path_factory):
    out = _demo(str(tmp_path_factory.mktemp("demo")))
    for name in ("demo.db", "report.html", "report.docx", "dataset.csv"):
        assert (out / name).stat().st_size > 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "src=\"http" not in html  # self-contained
    assert html.count("<svg") >= 8  # KM, CIF, forest, chimerism, swimmer figures inline
    rows = {r[0]: r[1:] for r in _html_rows(html)}
    assert rows["Complete remission"][1:3] == ["18 (90%)", "6 (67%)"]
    assert rows["Died"][1:3] == ["12 (60%)", "9 (100%)"]
    assert rows["Early death (≤ 4 weeks)"][1:3] == ["1 (5.0%)", "3 (33%)"]
    assert rows["Leukaemia-free at 1 year"][1:3] == ["16 (80%)", "1 (11%)"]
    assert "Fisher's exact test" in unescape(html)
    assert "Methods" in html and "Kaplan–Meier" in html
    data = pd.read_csv(out / "dataset.csv")
    assert len(data) == 29 and {"os_time", "os_status", "age_group", "alive_5y"} <= set(data.columns)


def test_docx_holds_the_same_baseline_table(tmp_path_factory):
    out = _demo(str(tmp_path_factory.mktemp("demo")))
    word = docx.Document(str(out / "report.docx"))
    html_rows = _html_rows((out / "report.html").read_text(encoding="utf-8"))
    first = word.tables[0]
    word_rows = [[c.text for c in row.cells] for row in first.rows]
    assert [r[0] for r in word_rows] == [r[0] for r in html_rows]
    assert word_rows[1:] == html_rows[1:]
    assert len(word.tables) >= 10 and len(word.inline_shapes) >= 8
    assert any(p.text.startswith("Baseline characteristics are summarised") for p in word.paragraphs)


def test_plan_check_and_run_commands(tmp_path):
    from allotrack.study.run import demo_plan_path

    ok = CliRunner().invoke(app, ["plan", "check", str(demo_plan_path())])
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\ntitle = "x"\n[data]\nsource = "demo"\n[endpoints]\nuse = ["os", "nope"]\n')
    res = CliRunner().invoke(app, ["plan", "check", str(bad)])
    assert res.exit_code == 2 and "bad.toml:6" in res.output and "nope" in res.output
    small = tmp_path / "small.toml"
    small.write_text('[study]\ntitle = "x"\n[data]\nsource = "demo"\n[endpoints]\nuse = ["os"]\n'
                     '[[analyses]]\nkind = "km"\nendpoint = "os"\n')
    res = CliRunner().invoke(app, ["run", str(small), "--out", str(tmp_path / "r"), "--format", "html"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").exists() and not (tmp_path / "r" / "report.docx").exists()
