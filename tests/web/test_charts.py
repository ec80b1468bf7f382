"""Charts from plotly (allotrack.web.charts) instead of hand-drawn SVG: the figure specs the pages carry hold a
hand-worked patient's values, thresholds, recovery window and tooltips; plotly.js and its style sheet come from our
own origin with long caching; the policy still names no third-party source."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, timedelta

import pandas as pd
import pytest
from webfixtures import login, web  # noqa: F401  (web: the fixture)

from allotrack.clinical.recovery import hematopoietic_recovery
from allotrack.records.schema import Records

ORIGIN = date(2020, 1, 1)
ANC = [1.5, 1.2, 0.3, 0.2, 0.1, 0.4, 0.8, 1.0, 1.4, 2.0]  # ×10⁹/L, daily from the infusion (2020-01-04)
PLT = [80, 60, 15, 10, 8, 12, 35, 40, 60, 90]
DAYS = [(ORIGIN + timedelta(days=3 + i)).isoformat() for i in range(len(ANC))]


def hand_worked() -> Records:
    """H1: diagnosis 2020-01-01, course 1 on 01-01..01-03, infusion 01-04, daily counts 01-04..01-13, chimerism
    0.8 % on 01-11 and 0.05 % on 02-04 (limit of detection 0.01 %), CR 01-25, relapse 03-01. MST window by hand: aplasia
    (ANC < 2 and PLT < 100) from 01-04 on; the nadir (first count at or below its recovery cut) 01-06; ANC > 0.5 and
    PLT > 30 on 01-10, 01-11, 01-12 -> window 2020-01-04 to 2020-01-10, 6 days."""
    d = pd.Timestamp
    obs = pd.DataFrame({"patient_id": "H1", "item": ["anc"] * 10 + ["plt"] * 10, "date": [d(x) for x in DAYS * 2],
                        "value": [float(v) for v in ANC + PLT], "unit": "10*9/L"})  # fmt: skip
    chim = pd.DataFrame({"patient_id": "H1", "item": "chimerism_pct", "date": [d("2020-01-11"), d("2020-02-04")],
                         "value": [0.8, 0.05], "unit": "%", "method": "qPCR", "specimen": "peripheral blood",
                         "lod": 0.01})  # fmt: skip
    return Records.from_frames(
        patients=pd.DataFrame({"patient_id": ["H1"], "sex": ["F"], "diagnosis": ["AML"],
                               "diagnosis_date": [d(ORIGIN)], "age_at_diagnosis": [60]}),
        donors=pd.DataFrame({"donor_id": ["HD1"], "patient_id": ["H1"], "relation": ["child"], "sex": ["M"]}),
        courses=pd.DataFrame({"course_id": ["HC1"], "patient_id": ["H1"], "number": [1], "kind": ["induction"],
                              "start_date": [d("2020-01-01")], "end_date": [d("2020-01-03")]}),
        infusions=pd.DataFrame({"infusion_id": ["HI1"], "patient_id": ["H1"], "course_id": ["HC1"],
                                "donor_id": ["HD1"], "date": [d("2020-01-04")], "product": ["G-PBSC"],
                                "cd34_per_kg": [1.5]}),
        observations=pd.concat([obs, chim], ignore_index=True),
        responses=pd.DataFrame({"patient_id": ["H1"], "date": [d("2020-01-25")], "category": ["CR"]}),
        relapses=pd.DataFrame({"patient_id": ["H1"], "date": [d("2020-03-01")], "kind": ["hematologic"]}),
        follow_up=pd.DataFrame({"patient_id": ["H1"], "last_contact_date": [d("2020-06-01")]}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def charted(web):
    web.state.store.import_records(hand_worked(), user="setup", centre="C1")
    return web


def specs(html: str) -> dict[str, dict]:
    """The figure specs a page carries, by chart name."""
    found = re.findall(r'<figure class="plot" id="chart-(\w+)"[^>]*><div class="plot-area"></div>'
                       r'<script type="application/json" class="chart-spec">(.*?)</script></figure>', html, re.S)
    return {name: json.loads(text, parse_constant=_no_nan) for name, text in found}


def _no_nan(constant: str) -> float:
    raise AssertionError(f"{constant} is not JSON: the browser's JSON.parse would fail")


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def test_patient_counts_figure_holds_the_hand_worked_values_thresholds_and_window(charted):
    page = login(charted, "dm1").get("/patients/H1")
    assert page.status_code == 200
    counts = specs(page.text)["counts"]
    anc, plt = trace(counts, "ANC"), trace(counts, "Platelets")
    assert anc["x"] == DAYS and anc["y"] == ANC and anc["yaxis"] == "y"
    assert plt["x"] == DAYS and plt["y"] == [float(v) for v in PLT] and plt["yaxis"] == "y2"
    assert counts["layout"]["yaxis"]["type"] == "log" and counts["layout"]["yaxis2"]["type"] == "log"
    lines = {(s["yref"], s["y0"], s["y1"]) for s in counts["layout"]["shapes"] if s["type"] == "line"
             and s["xref"] == "x domain"}  # fmt: skip
    assert lines == {("y", 0.5, 0.5), ("y2", 20.0, 20.0)}
    # the window is the clinical rule's, counted from the course's start (day 0 = 2020-01-01)
    w = hematopoietic_recovery(list(range(3, 13)), ANC, PLT, chemotherapy_end=2)
    assert (w.status, w.start_day, w.end_day) == ("recovered", 3.0, 9.0)
    rects = [s for s in counts["layout"]["shapes"] if s["type"] == "rect"]
    assert {(r["x0"], r["x1"], r["yref"]) for r in rects} == {("2020-01-04", "2020-01-10", "y domain"),
                                                               ("2020-01-04", "2020-01-10", "y2 domain")}
    assert "course 1 2020-01-04 → 2020-01-10 (6 days)" in page.text
    # tooltips: date, day from infusion, value and unit
    assert anc["text"][2] == "2020-01-06 · day +2 after infusion 1<br>ANC 0.3 ×10⁹/L"
    assert plt["text"][0] == "2020-01-04 · day 0 (infusion 1)<br>Platelets 80 ×10⁹/L"
    assert anc["hovertemplate"] == "%{text}<extra></extra>"
    events = {t["name"]: t for t in counts["data"] if t.get("yaxis") == "y3"}
    assert events["Infusion"]["x"] == ["2020-01-04"] and events["Relapse"]["x"] == ["2020-03-01"]
    assert events["Relapse"]["text"] == ["2020-03-01 · day +57 after infusion 1<br>relapse (hematologic)"]
    assert events["Infusion"]["text"] == ["2020-01-04 · day 0 (infusion 1)<br>infusion 1: G-PBSC, CD34 1.5 ×10⁶/kg"]


def test_patient_chimerism_figure_has_the_values_and_the_limit_of_detection(charted):
    chim = specs(login(charted, "vw1").get("/patients/H1").text)["chimerism"]
    donor = trace(chim, "Donor")
    assert donor["x"] == ["2020-01-11", "2020-02-04"] and donor["y"] == [0.8, 0.05]
    assert donor["text"][1] == "2020-02-04 · day +31 after infusion 1<br>Donor 0.05 %<br>qPCR, peripheral blood"
    assert chim["layout"]["yaxis"]["type"] == "log"
    lod = [s for s in chim["layout"]["shapes"] if s["type"] == "line" and s["xref"] == "x domain"]
    assert [(s["y0"], s["label"]["text"]) for s in lod] == [(0.01, "limit of detection 0.01 %")]


def test_pages_load_plotly_from_our_origin_and_no_hand_drawn_svg(charted):
    from importlib.metadata import version

    client = login(charted, "an1")
    for path in ("/patients/H1", "/dashboard"):
        page = client.get(path)
        assert f'<script src="/assets/plotly-{version("plotly")}.min.js"></script>' in page.text
        assert 'id="plotly.js-style-global" class="no-inline-styles"' in page.text
        assert "<svg" not in page.text and "<script>" not in page.text  # no inline script
        srcs = re.findall(r'<script[^>]* src="([^"]+)"', page.text)
        assert srcs and all(s.startswith("/") and not s.startswith("//") for s in srcs), srcs
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "style-src 'self';" in csp
        assert not re.search(r"https?:|unsafe-inline|unsafe-eval|\*", csp), csp


def test_plotly_script_and_style_sheet_are_served_with_long_caching(charted):
    from importlib.metadata import version

    from fastapi.testclient import TestClient

    client = TestClient(charted)  # no login: static assets
    name = f"/assets/plotly-{version('plotly')}"
    js = client.get(f"{name}.min.js", headers={"Accept-Encoding": "identity"})
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert js.content.startswith(b"/**\n* plotly.js v") and len(js.content) > 3_000_000
    zipped = client.get(f"{name}.min.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == js.content  # httpx decompressed it
    assert client.get(f"{name}.min.js", headers={"If-None-Match": js.headers["etag"]}).status_code == 304
    css = client.get(f"{name}.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".js-plotly-plot .plotly .modebar {position:absolute;top:2px;right:2px;}" in css.text
    assert ".plotly-notifier p {margin:0;}" in css.text and ".maplibregl-map{" in css.text
    assert client.get("/assets/plotly-1.0.0.min.js").status_code == 404
    assert client.get("/assets/..%2Fapp.py").status_code == 404
    assert gzip.decompress(gzip.compress(js.content)) == js.content


def test_dashboard_figures_are_plotly_step_curves_with_numbers_at_risk(charted):
    import allotrack as at
    from allotrack.report.format import format_pvalue
    from allotrack.web.charts import curves_figure
    from allotrack.web.dashboard import _survival

    # group a: events at 1 and 3, censored at 2 -> S = 1, 2/3 (t=1), 2/3 (t=2), 0 (t=3); group b: 2 events of 2
    data = pd.DataFrame({"t": [1.0, 2.0, 3.0, 1.5, 4.0], "e": [1, 0, 1, 1, 1], "group": ["a", "a", "a", "<b>", "<b>"]})
    p = at.logrank_test(data, "t", "e", by="group").p_value
    fig = curves_figure(_survival(data, p, "Months since diagnosis"))
    a = trace(fig, "a")
    assert a["x"] == [0.0, 1.0, 2.0, 3.0] and a["y"] == pytest.approx([1.0, 2 / 3, 2 / 3, 0.0])
    assert a["line"]["shape"] == "hv" and a["text"][1].startswith("a · month 1<br>66.7 % (95 % CI")
    assert trace(fig, "&lt;b&gt;")["y"] == [1.0, 0.5, 0.0]  # a group's name is shown, not read as markup
    censored = trace(fig, "a censored")
    assert censored["x"] == [2.0] and censored["y"] == pytest.approx([2 / 3])
    risk = trace(fig, "a at risk")
    assert risk["x"] == fig["layout"]["xaxis"]["tickvals"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert risk["text"] == ["3", "3", "2", "1", "0"]  # times >= 0, 1, 2, 3, 4 (R summary.survfit at times)
    assert fig["layout"]["title"]["text"] == f"Log-rank {format_pvalue(p, prepend_p=True)}"


def test_dashboard_page_and_its_htmx_swap_carry_the_specs(charted):
    an1 = login(charted, "an1")
    page = specs(an1.get("/dashboard").text)
    assert sorted(page) == ["cir", "os"]
    assert page["os"]["layout"]["title"]["text"].startswith("Log-rank p")
    partial = an1.get("/dashboard/figures?group=courses", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "<script src" not in partial.text  # a fragment; plotly is loaded
    figs = specs(partial.text)
    names = [t["name"] for t in figs["os"]["data"] if t.get("mode") == "lines" and t.get("legendgroup") == t["name"]]
    assert names == ["1–3", "&gt; 3"]
    assert figs["cir"]["layout"]["title"]["text"].startswith("Gray's test p")
