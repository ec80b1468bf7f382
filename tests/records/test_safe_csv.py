"""Spreadsheet-safe CSV (OWASP "CSV Injection"): text cells and column names that begin with = + - @ tab or carriage
return are written with a leading ', numbers (negative ones included) are written unchanged; and every CSV the
command line, the study report and the web application write goes through it."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
from test_derive import history
from webfixtures import login, page_csrf, web  # noqa: F401  (web: the fixture)

from allotrack.cli import app
from allotrack.records.safe_csv import FORMULA_PREFIXES, csv_text, neutralise, neutralise_cell, write_csv

HYPERLINK = '=HYPERLINK("http://x","y")'


def _read_text(source) -> pd.DataFrame:
    """Every cell as the exact text in the file: no NA guessing, no number parsing."""
    return pd.read_csv(source, dtype=str, keep_default_na=False)


def _is_number_column(cells: pd.Series) -> bool:
    filled = cells[cells != ""]
    return bool(len(filled)) and pd.to_numeric(filled, errors="coerce").notna().all()


def _assert_no_formula_cell(frame: pd.DataFrame, where: str = "") -> None:
    """No header and no text cell begins with a formula prefix; in a column of numbers only a minus sign may."""
    for name in frame.columns:
        assert not str(name).startswith(FORMULA_PREFIXES), (where, "header", name)
        cells = frame[name]
        if _is_number_column(cells):
            bad = [v for v in cells if v.startswith(FORMULA_PREFIXES) and not v[:1] == "-"]
        else:
            bad = [v for v in cells if v.startswith(FORMULA_PREFIXES)]
        assert not bad, (where, name, bad)


# ---------------------------------------------------------------- hand-worked cases


@pytest.mark.parametrize(("value", "expected"), [
    (HYPERLINK, "'" + HYPERLINK), ("=2+5", "'=2+5"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("", ""), ("'=already", "'=already"), (" =x", " =x"),
    ("a=b", "a=b"),
])  # fmt: skip
def test_neutralise_cell_hand_worked(value, expected):
    assert neutralise_cell(value) == expected


@pytest.mark.parametrize("value", [None, np.nan, -1, -1.5, 0, True, date(2020, 1, 1), pd.Timestamp("2020-01-01"), b"=x"])
def test_neutralise_cell_leaves_non_text_alone(value):
    assert neutralise_cell(value) is value


TEXTS = [HYPERLINK, "=2+5", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "", None, np.nan]
EXPECTED = ["'" + HYPERLINK, "'=2+5", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain", "", "", ""]


@pytest.mark.parametrize("text_dtype", [object, "str", "string[python]", "string[pyarrow]"])
def test_write_csv_hand_worked(tmp_path, text_dtype):
    n = len(TEXTS)
    frame = pd.DataFrame({
        "text": pd.Series(TEXTS, dtype=text_dtype), "real": [-1.5] * n, "whole": [-3] * n,
        "flag": [True, False] * 5 + [True], "day": pd.to_datetime(["2020-01-01"] * n),
    })  # fmt: skip
    before = frame.copy()
    path = tmp_path / "out.csv"
    write_csv(frame, path)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is not changed
    text = _read_text(path)
    assert list(text["text"]) == EXPECTED  # None / NaN stay empty cells
    assert set(text["real"]) == {"-1.5"} and set(text["whole"]) == {"-3"}  # numbers unquoted, unchanged
    back = pd.read_csv(path)
    assert back["real"].dtype == np.float64 and (back["real"] == -1.5).all()
    assert back["whole"].dtype == np.int64 and (back["whole"] == -3).all()
    assert back["flag"].dtype == bool and list(back["flag"]) == list(frame["flag"])
    assert list(text["day"]) == ["2020-01-01"] * n
    raw = path.read_text(encoding="utf-8")
    assert "'-1.5" not in raw and "'-3" not in raw and "\"'" + HYPERLINK.replace('"', '""') + '"' in raw


def test_only_text_cells_and_names_change():
    frame = pd.DataFrame({
        "=name": ["=a", "b"], "-1": [-1, 2], "@when": [date(2020, 1, 1), date(2020, 2, 1)],
        "mixed": pd.Series(["=x", -2], dtype=object), "number_as_text": pd.Series(["-5", "5"], dtype=object),
        "levels": pd.Categorical(["+a", "b"]), "none": pd.Series([None, None], dtype=object),
    })  # fmt: skip
    out = neutralise(frame)
    assert list(out.columns) == ["'=name", "'-1", "'@when", "mixed", "number_as_text", "levels", "none"]
    assert list(out["'=name"]) == ["'=a", "b"]
    assert list(out["'-1"]) == [-1, 2] and out["'-1"].dtype == np.int64
    assert list(out["'@when"]) == [date(2020, 1, 1), date(2020, 2, 1)]
    assert list(out["mixed"]) == ["'=x", -2]  # a number in an object column stays a number
    assert list(out["number_as_text"]) == ["'-5", "5"]  # "-5" stored as text is text
    assert list(out["levels"]) == ["'+a", "b"] and isinstance(out["levels"].dtype, pd.CategoricalDtype)
    assert list(out["none"]) == [None, None]
    assert frame.columns[0] == "=name" and frame["=name"][0] == "=a"  # a copy


def test_categories_that_would_collide_become_text():
    out = neutralise(pd.DataFrame({"c": pd.Categorical(["=x", "'=x", "y"])}))
    assert list(out["c"]) == ["'=x", "'=x", "y"]


def test_a_carriage_return_inside_a_cell_cannot_start_a_row():
    # pandas ends lines with \n and its csv writer quotes only \n: "a\r=1+2" unquoted would become two rows, the
    # second starting with the formula =1+2; write_csv ends lines with \r\n then, so the cell is quoted
    frame = pd.DataFrame({"note": ["a\r=1+2", "b"], "n": [-1.0, 2.0]})
    text = csv_text(frame)
    assert '"a\r=1+2"' in text
    back = _read_text(io.StringIO(text))
    assert list(back["note"]) == ["a\r=1+2", "b"] and list(back["n"]) == ["-1.0", "2.0"]
    assert "\r\n" not in csv_text(pd.DataFrame({"note": ["ab"], "n": [1]}))  # other files keep pandas' line ends
    with pytest.raises(ValueError, match="carriage return"):
        csv_text(frame, lineterminator="\n")


def test_index_and_header_aliases_are_neutralised_too():
    frame = pd.DataFrame({"v": [-1.5, 2.0]}, index=pd.Index(["=a", "b"], name="@id"))
    assert _read_text(io.StringIO(csv_text(frame, index=True))).to_dict("list") == {"'@id": ["'=a", "b"],
                                                                                   "v": ["-1.5", "2.0"]}  # fmt: skip
    assert csv_text(frame, header=["+v"]).splitlines()[0] == "'+v"


# ---------------------------------------------------------------- property: no formula cell, exact round trip

# st.text() draws any Unicode text but lone surrogates, which UTF-8 (and so no CSV file) cannot hold; the second
# alphabet draws the prefixes, quotes, separators, line breaks and NUL often. Nothing else needs leaving out: with
# dtype=str and keep_default_na=False, read_csv keeps "" as "" and "NA" / "nan" as text, a cell holding \n or \r is
# quoted (write_csv ends lines with \r\n when a cell holds \r), and a row is never blank (the number is there).
TRICKY = st.text(alphabet=st.one_of(st.sampled_from([*FORMULA_PREFIXES, "'", '"', ",", ";", "\n", " ", "\x00", "\ufeff"]),
                                    st.characters(codec="utf-8")))  # fmt: skip
# NaN is a missing value (an empty cell) and not equal to itself; infinities are not finite measurements
NUMBERS = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.text(), TRICKY), NUMBERS), min_size=1, max_size=8),
       text_dtype=st.sampled_from([object, "str", "string[python]"]))  # fmt: skip
@example(rows=[("a\r=1", -0.0), ("-5", 5e-324), ("\r", -1.7976931348623157e308), ("", 0.1 + 0.2)], text_dtype="str")
def test_write_csv_round_trip(rows, text_dtype):
    frame = pd.DataFrame({"text": pd.Series([t for t, _ in rows], dtype=text_dtype),
                          "number": np.array([x for _, x in rows], dtype=np.float64)})  # fmt: skip
    buffer = io.StringIO()
    write_csv(frame, buffer)  # default float format: the shortest repr, which reads back as the same double
    back = pd.read_csv(io.StringIO(buffer.getvalue()), dtype={"text": str}, keep_default_na=False)
    assert back["number"].dtype == np.float64
    assert list(back["number"]) == list(frame["number"])  # exactly, with ==
    texts = list(back["text"])
    assert not [t for t in texts if t.startswith(FORMULA_PREFIXES)]
    for original, written in zip(frame["text"], texts, strict=True):
        assert written == ("'" + original if original.startswith(FORMULA_PREFIXES) else original)


# ---------------------------------------------------------------- every CSV the project writes

HOSTILE_ID = "=2+5"


def _hostile_study(folder: Path) -> list[str]:
    """The hand-built study of the endpoint tests with formulas in its free text and p3 renamed "=2+5", one CSV
    file per table."""
    files = []
    for name, table in history().tables.items():
        frame = table.copy()
        if "patient_id" in frame.columns:
            frame["patient_id"] = frame["patient_id"].replace({"p3": HOSTILE_ID})
        if name == "patients":
            frame["subtype"] = [HYPERLINK, "+cmd", "@x", "-2+3", "plain"]
            frame["arm"] = ["-2+3", "@SUM(A1)", "\tx", "=1", "B"]
        if name == "deaths":
            frame["cause"] = ["=cmd|' /C calc'!A0", "+1", "-1", "infection"]
        if name == "courses":
            frame["regimen"] = ["=7+3", "@x", "+AraC", "-DA", "FLAG", "7+3"]
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        files.append(str(path))
    return files


def test_cli_writes_spreadsheet_safe_csv(tmp_path):
    files = _hostile_study(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "secret.txt").write_text("0123456789abcdef-secret")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    runner = CliRunner()
    for args in (["db", "init", "--db", db], ["import", *files, "--db", db],
                 ["derive", "--out", str(out / "dataset.csv"), "--explain", str(out / "why.csv"), "--db", db],
                 ["export", "adtte", "--out", str(out / "adtte.csv"), "--db", db],
                 ["export", "deidentified", "--out-dir", str(out / "deid"), "--secret-file",
                  str(tmp_path / "secret.txt"), "--key-out", str(out / "key.csv"), "--db", db]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[:2], result.output)

    written = sorted(out.rglob("*.csv"))
    assert {p.name for p in written} >= {"dataset.csv", "why.csv", "adtte.csv", "key.csv", "patients.csv"}
    tables = {str(p.relative_to(out)): _read_text(p) for p in written}
    for where, frame in tables.items():
        _assert_no_formula_cell(frame, where)

    dataset = tables["dataset.csv"]
    assert "'" + HOSTILE_ID in set(dataset["patient_id"])
    assert {"'-2+3", "'@SUM(A1)", "'=1"} <= set(dataset["arm"])
    assert "'" + HOSTILE_ID in set(tables["why.csv"]["patient_id"])
    assert "'" + HOSTILE_ID in set(tables["adtte.csv"]["USUBJID"])
    assert "'" + HOSTILE_ID in set(tables["key.csv"]["patient_id"])
    deid = tables[str(Path("deid") / "patients.csv")]
    assert set(deid["subtype"]) == {"'" + HYPERLINK, "'+cmd", "'@x", "'-2+3", "plain"}
    assert {"'-2+3", "'@SUM(A1)", "'=1"} <= set(deid["arm"])

    # numbers stay numbers: times, AVAL, and the (often negative) date shifts of the key
    data = pd.read_csv(out / "dataset.csv")
    for column in [c for c in data.columns if c.endswith("_time")]:
        assert data[column].dtype == np.float64, column
    assert list(data.set_index("patient_id").loc["'" + HOSTILE_ID, ["os_time", "lfs_time"]]) == [400.0, 372.0]
    adtte = pd.read_csv(out / "adtte.csv")
    assert adtte["AVAL"].dtype == np.float64 and (adtte["AVAL"] > 0).all()
    key = pd.read_csv(out / "key.csv")
    assert key["shift_days"].dtype == np.int64 and (key["shift_days"] < 0).any()
    assert key["shift_days"].between(-182, 182).all()


def test_study_report_dataset_csv_is_safe(tmp_path):
    from allotrack.report.document import Document
    from allotrack.study.plan import load_plan
    from allotrack.study.run import StudyResult, demo_plan_path, write_report

    dataset = pd.DataFrame({"patient_id": [HOSTILE_ID, "p2"], "arm": ["@x", "B"], "change": [-1.5, 2.0],
                            "os_status": [1, 0]})  # fmt: skip
    result = StudyResult(Document("t", "s", (), ""), dataset, load_plan(demo_plan_path()))
    written = write_report(result, tmp_path, formats=())
    text = _read_text(written["dataset"])
    assert text.to_dict("list") == {"patient_id": ["'" + HOSTILE_ID, "p2"], "arm": ["'@x", "B"],
                                    "change": ["-1.5", "2.0"], "os_status": ["1", "0"]}  # fmt: skip
    assert pd.read_csv(written["dataset"])["change"].dtype == np.float64


def test_web_audit_csv_download_is_safe(web):  # noqa: F811  (the fixture)
    dm1 = login(web, "dm1")
    token = page_csrf(dm1)
    res = dm1.post("/patients/MST16/gvhd", data={"csrf_token": token, "date": "2016-01-10", "skin_bsa": "30",
                                                 "reason": HYPERLINK})  # fmt: skip
    assert res.status_code == 303
    download = dm1.get("/patients/MST16/audit?format=csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    audit = _read_text(io.StringIO(download.text))
    _assert_no_formula_cell(audit, "audit.csv")
    assert "'" + HYPERLINK in set(audit["reason"])


# ---------------------------------------------------------------- import → every export, any text

_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20),
    st.builds(lambda p, t: p + t, st.sampled_from(["=", "+", "-", "@", "\t", "\r", " ="]), st.text(max_size=10)),
).filter(lambda t: t.strip() != "" and "\x00" not in t)


@settings(max_examples=10, deadline=None)  # each example is a whole import and four exports
@given(subtype=_TEXT, arm=_TEXT, cause=_TEXT, regimen=_TEXT)
@example(subtype=HYPERLINK, arm="+cmd|' /C calc'!A0", cause="@SUM(1+1)", regimen="-2+3")
@example(subtype="\r=1+2", arm="\t=x", cause="a\r=b", regimen="=2+5")
def test_any_cell_text_goes_through_import_and_every_export_without_a_formula(tmp_path_factory, subtype, arm, cause,
                                                                               regimen):  # fmt: skip
    """Free text typed into the source files (subtype, arm, cause of death, regimen) is imported from CSV, stored,
    and written by derive, its explanation, ADTTE and the de-identified export: no cell of any of them starts with
    a formula character, the text comes back (with the quote where it needed one), and numbers stay numbers."""
    from allotrack.endpoints import derive_endpoints
    from allotrack.endpoints.adtte import adtte
    from allotrack.records.deidentify import deidentify
    from allotrack.records.importers import read_tables
    from allotrack.records.store import Store

    folder = tmp_path_factory.mktemp("any-text")
    h = history()
    tables = dict(h.tables)
    tables["patients"] = h["patients"].assign(subtype=subtype, arm=arm)
    tables["deaths"] = h["deaths"].assign(cause=cause)
    tables["courses"] = h["courses"].assign(regimen=regimen)
    for name, frame in tables.items():  # as a spreadsheet saves them: every text cell quoted (a lone CR too)
        frame.to_csv(folder / f"{name}.csv", index=False, quoting=csv.QUOTE_ALL)
    store = Store(f"sqlite:///{folder / 's.db'}")
    store.init()
    store.import_records(read_tables(sorted(folder.glob("*.csv"))))
    records = store.load()
    derived = derive_endpoints(records, validate=False)
    written = {"dataset": derived.data, "explanation": derived.explanation, "adtte": adtte(derived)}
    deidentified = deidentify(records, secret="a secret of sixteen+")
    written |= {f"deid-{n}": f for n, f in deidentified.records.tables.items()} | {"key": deidentified.key}
    for name, frame in written.items():
        text = _read_text(io.StringIO(csv_text(frame)))
        _assert_no_formula_cell(text, name)
    back = _read_text(io.StringIO(csv_text(deidentified.records["patients"])))
    assert set(back["subtype"]) == {neutralise_cell(subtype.strip())}
    assert set(back["arm"]) == {neutralise_cell(arm.strip())}
    times = _read_text(io.StringIO(csv_text(derived.data)))["os_time"]
    assert pd.to_numeric(times).notna().all()
    store.engine.dispose()
