"""SDTM-like exports (LB, EX, SUPPEX, RS, AE) of records stored through the record store: exact rows, sequence
numbers, the CLI and spreadsheet-safe files."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parent))
from test_derive import history
from test_store_import import store  # noqa: F401  (the SQLite + PostgreSQL store fixture)

from allotrack.cli import app
from allotrack.errors import InputError
from allotrack.records import Records
from allotrack.records.dictionary import Item, default_dictionary
from allotrack.records.sdtm import sdtm_domains, test_code, write_sdtm
from allotrack.records.store import Store

BILI_MG_DL = 17.1 * 584.66 / 10_000  # 17.1 umol/L of bilirubin (584.66 g/mol) = 0.99977 mg/dL
MPROT = test_code("mprot_serum")
ELN = test_code("response_eln")
GVHD_RESPONSE = test_code("gvhd_response")
METHYLPRED = default_dictionary().item("methylprednisolone").label


def _extra() -> dict[str, pd.DataFrame]:
    """A few records of every exported kind on top of history() (p1..p5, diagnosis 2020-01-01)."""
    return {
        "observations": pd.DataFrame({
            "patient_id": ["p1", "p1", "p1", "p1", "p2", "p2"],
            "item": ["bili", "bili", "il6", "anc", "mprot_serum", "bili"],
            "date": ["2020-02-01", "2020-01-10", "2020-01-20", None, "2020-01-15", "2020-01-15"],
            "visit": ["day 31", None, None, "screening", None, None], "study_day": [31, None, None, None, None, None],
            "value": [17.1, 1.2, None, 1500, 3.2, 17.1],
            "unit": ["umol/L", "mg/dL", "pg/mL", "cells/uL", "g/dL", "umol/L"],
            "specimen": ["serum", None, "=x", None, None, None], "method": [None, None, "ELISA", None, None, None],
            "lod": [None, None, 2.0, None, None, None], "below_lod": [None, None, True, None, None, None]}),
        "interventions": pd.DataFrame({
            "patient_id": ["p2", "p1", "p3"], "agent": ["basiliximab", "methylprednisolone", "basiliximab"],
            "start_date": ["2020-02-01", "2020-01-05", "2020-01-02"], "end_date": [None, "2020-01-09", None],
            "dose": [20.0, 2.0, 1.0], "unit": ["mg", "mg/kg", "mg"], "per_kg": [None, True, True],
            "route": ["iv", "iv", "sc"], "course_id": ["c3", None, None], "dose_level": ["DL1", None, None]}),
        "assessments": pd.DataFrame({
            "patient_id": ["p2", "p2", "p1"], "item": ["gvhd_response", "agvhd_grade", "response_eln"],
            "date": ["2020-03-30", "2020-03-02", "2020-01-31"], "visit": ["week 4", None, None],
            "study_day": [None, None, 30], "value_text": ["CR", "2", "complete remission"],
            "rule": [None, "MAGIC 2016", "ELN 2022"]}),
        "adverse_events": pd.DataFrame({
            "patient_id": ["p1", "p1"], "start_date": ["2020-02-03", "2020-01-20"],
            "term": ["Febrile neutropenia", "Lung infection"],
            "soc": ["Blood and lymphatic system disorders", "Infections and infestations"], "grade": [3, 2]}),
    }  # fmt: skip


def _records() -> Records:
    """history() and the extra records (extra rows first where history() has rows of the kind)."""
    base = dict(history().tables)
    for name, frame in _extra().items():
        base[name] = pd.concat([frame, base[name]], ignore_index=True) if name in base else frame
    return Records(base)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, every missing value None (NaN, NA)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
                    for k, v in row.items()})  # fmt: skip
    return out


@pytest.fixture
def stored(store):  # noqa: F811
    store.import_records(_records())
    return store.load(), store.dictionary()


def test_lb_rows_as_reported_and_in_standard_units(stored):
    records, dictionary = stored
    lb = sdtm_domains(records, dictionary)["LB"]
    assert list(lb.columns) == ["DOMAIN", "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST", "LBORRES", "LBORRESU",
                                "LBSTRESC", "LBSTRESN", "LBSTRESU", "LBSTAT", "LBREASND", "LBSPEC", "LBMETHOD",
                                "LBLLOQ", "VISIT", "LBDTC", "LBDY"]  # fmt: skip
    rows = _rows(lb)
    for row in rows:  # the stored numbers: compared to the hand-computed ones below, then set aside
        if row["LBSTRESN"] is not None and row["LBSTRESU"] == "mg/dL" and row["LBORRESU"] == "umol/L":
            assert row["LBSTRESN"] == pytest.approx(BILI_MG_DL, rel=1e-12)
            assert float(row["LBSTRESC"]) == row["LBSTRESN"]  # the standard number as text, exactly
            assert row["LBSTRESC"].startswith("0.99976")
            row["LBSTRESN"] = row["LBSTRESC"] = "bilirubin in mg/dL"
    common = {"DOMAIN": "LB", "LBSTAT": None, "LBREASND": None, "LBSPEC": None, "LBMETHOD": None, "LBLLOQ": None,
              "VISIT": None, "LBDY": None}  # fmt: skip
    bili = "Total bilirubin"
    assert rows == [
        {**common, "USUBJID": "p1", "LBSEQ": 1, "LBTESTCD": "BILI", "LBTEST": bili, "LBORRES": "1.2",
         "LBORRESU": "mg/dL", "LBSTRESC": "1.2", "LBSTRESN": 1.2, "LBSTRESU": "mg/dL", "LBDTC": "2020-01-10"},
        {**common, "USUBJID": "p1", "LBSEQ": 2, "LBTESTCD": "IL6", "LBTEST": dictionary.item("il6").label,
         "LBORRES": "<2", "LBORRESU": "pg/mL", "LBSTRESC": "<2", "LBSTRESN": None, "LBSTRESU": "pg/mL",
         "LBSPEC": "=x", "LBMETHOD": "ELISA", "LBLLOQ": 2.0, "LBDTC": "2020-01-20"},
        {**common, "USUBJID": "p1", "LBSEQ": 3, "LBTESTCD": "BILI", "LBTEST": bili, "LBORRES": "17.1",
         "LBORRESU": "umol/L", "LBSTRESC": "bilirubin in mg/dL", "LBSTRESN": "bilirubin in mg/dL",
         "LBSTRESU": "mg/dL", "LBSPEC": "serum", "VISIT": "day 31", "LBDTC": "2020-02-01", "LBDY": 31},
        {**common, "USUBJID": "p1", "LBSEQ": 4, "LBTESTCD": "ANC", "LBTEST": "Absolute neutrophil count",
         "LBORRES": "1500", "LBORRESU": "cells/uL", "LBSTRESC": "1.5", "LBSTRESN": 1.5, "LBSTRESU": "10^9/L",
         "VISIT": "screening", "LBDTC": None},
        # p2: two observations on one day: ordered by test code (BILI < MPROT...)
        {**common, "USUBJID": "p2", "LBSEQ": 1, "LBTESTCD": "BILI", "LBTEST": bili, "LBORRES": "17.1",
         "LBORRESU": "umol/L", "LBSTRESC": "bilirubin in mg/dL", "LBSTRESN": "bilirubin in mg/dL",
         "LBSTRESU": "mg/dL", "LBDTC": "2020-01-15"},
        {**common, "USUBJID": "p2", "LBSEQ": 2, "LBTESTCD": MPROT, "LBTEST": "Serum M-protein", "LBORRES": "3.2",
         "LBORRESU": "g/dL", "LBSTRESC": "32", "LBSTRESN": 32.0, "LBSTRESU": "g/L", "LBDTC": "2020-01-15"},
    ]  # fmt: skip


def test_ex_and_its_supplemental_qualifiers(stored):
    records, dictionary = stored
    domains = sdtm_domains(records, dictionary, study_id="ALLO-1")
    ex = domains["EX"]
    assert list(ex.columns) == ["STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXGRPID", "EXREFID", "EXTRT", "EXDOSE",
                                "EXDOSU", "EXROUTE", "VISIT", "EXSTDTC", "EXENDTC"]  # fmt: skip
    common = {"STUDYID": "ALLO-1", "DOMAIN": "EX", "EXGRPID": None, "EXREFID": None, "VISIT": None}
    cells = {"EXTRT": "G-PBSC", "EXDOSU": "10^6/kg", "EXROUTE": "INTRAVENOUS"}
    basiliximab = "Basiliximab dose"
    expected = [
        {**common, "USUBJID": "p1", "EXSEQ": 1, "EXTRT": METHYLPRED, "EXDOSE": 2.0, "EXDOSU": "mg/kg",
         "EXROUTE": "INTRAVENOUS", "EXSTDTC": "2020-01-05", "EXENDTC": "2020-01-09"},
        {**common, **cells, "USUBJID": "p1", "EXSEQ": 2, "EXREFID": "i1", "EXDOSE": 1.1, "EXSTDTC": "2020-02-10",
         "EXENDTC": "2020-02-10"},
        {**common, "USUBJID": "p2", "EXSEQ": 1, "EXGRPID": "c3", "EXTRT": basiliximab, "EXDOSE": 20.0,
         "EXDOSU": "mg", "EXROUTE": "INTRAVENOUS", "EXSTDTC": "2020-02-01", "EXENDTC": None},
        {**common, **cells, "USUBJID": "p2", "EXSEQ": 2, "EXREFID": "i2", "EXDOSE": 2.0, "EXSTDTC": "2020-02-05",
         "EXENDTC": "2020-02-05"},
        {**common, "USUBJID": "p3", "EXSEQ": 1, "EXTRT": basiliximab, "EXDOSE": 1.0, "EXDOSU": "mg/kg",
         "EXROUTE": "SUBCUTANEOUS", "EXSTDTC": "2020-01-02", "EXENDTC": None},  # per kg: mg -> mg/kg
        {**common, **cells, "USUBJID": "p3", "EXSEQ": 2, "EXREFID": "i3", "EXDOSE": 1.5, "EXSTDTC": "2020-01-31",
         "EXENDTC": "2020-01-31"},
        {**common, **cells, "USUBJID": "p4", "EXSEQ": 1, "EXREFID": "i4", "EXDOSE": 0.9, "EXSTDTC": "2020-01-21",
         "EXENDTC": "2020-01-21"},
        {**common, **cells, "USUBJID": "p5", "EXSEQ": 1, "EXREFID": "i5", "EXDOSE": 1.2, "EXSTDTC": "2020-01-23",
         "EXENDTC": "2020-01-23"},
    ]  # fmt: skip
    assert _rows(ex) == expected
    supp = domains["SUPPEX"]
    assert list(supp.columns) == ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QLABEL", "QVAL"]
    assert set(supp["RDOMAIN"]) == {"EX"} and set(supp["IDVAR"]) == {"EXSEQ"}
    triples = list(zip(supp["USUBJID"], supp["IDVARVAL"], supp["QNAM"], supp["QVAL"], strict=True))
    assert triples == [
        ("p1", "2", "CD34DOSE", "1.1"), ("p1", "2", "DONORID", "d1"),
        ("p2", "1", "DOSELVL", "DL1"), ("p2", "2", "CD34DOSE", "2"), ("p2", "2", "DONORID", "d2b"),
        ("p3", "2", "CD34DOSE", "1.5"), ("p3", "2", "DONORID", "d3"),
        ("p4", "1", "CD34DOSE", "0.9"), ("p4", "1", "DONORID", "d4"),
        ("p5", "1", "CD34DOSE", "1.2"), ("p5", "1", "DONORID", "d5"),
    ]  # fmt: skip
    assert supp.set_index("QNAM").loc["DOSELVL", "QLABEL"] == "Dose level"


def test_rs_holds_response_assessments(stored):
    records, dictionary = stored
    rs = sdtm_domains(records, dictionary)["RS"]
    assert list(rs.columns) == ["DOMAIN", "USUBJID", "RSSEQ", "RSTESTCD", "RSTEST", "RSCAT", "RSORRES", "RSSTRESC",
                                "VISIT", "RSDTC", "RSDY"]  # fmt: skip
    common = {"DOMAIN": "RS", "RSCAT": None, "VISIT": None, "RSDY": None}
    # history()'s responses are assessments of the item disease_response (the categories of the first schema)
    overall = {"RSTESTCD": test_code("disease_response"), "RSTEST": "Disease response (category as recorded)"}
    assert _rows(rs) == [
        {**common, **overall, "USUBJID": "p1", "RSSEQ": 1, "RSORRES": "complete remission", "RSSTRESC": "CR",
         "RSDTC": "2020-01-31"},
        {**common, "USUBJID": "p1", "RSSEQ": 2, "RSTESTCD": ELN, "RSTEST": "Disease response (ELN 2022, AML)",
         "RSCAT": "ELN 2022", "RSORRES": "complete remission", "RSSTRESC": "CR", "RSDTC": "2020-01-31", "RSDY": 30},
        {**common, **overall, "USUBJID": "p2", "RSSEQ": 1, "RSORRES": "complete remission", "RSSTRESC": "CR",
         "RSDTC": "2020-01-26"},
        {**common, "USUBJID": "p2", "RSSEQ": 2, "RSTESTCD": GVHD_RESPONSE, "RSTEST": "GVHD treatment response",
         "RSORRES": "complete response", "RSSTRESC": "CR", "VISIT": "week 4", "RSDTC": "2020-03-30"},
        {**common, **overall, "USUBJID": "p3", "RSSEQ": 1, "RSORRES": "CR with incomplete haematologic recovery",
         "RSSTRESC": "CRi", "RSDTC": "2020-01-29"},
        {**common, **overall, "USUBJID": "p4", "RSSEQ": 1, "RSORRES": "no response", "RSSTRESC": "NR",
         "RSDTC": "2020-01-29"},
        {**common, **overall, "USUBJID": "p5", "RSSEQ": 1, "RSORRES": "complete remission", "RSSTRESC": "CR",
         "RSDTC": "2020-01-21"},
    ]  # fmt: skip  (agvhd_grade is an assessment but not a response: not in RS)


def test_ae_in_start_date_order(stored):
    records, dictionary = stored
    assert _rows(sdtm_domains(records, dictionary)["AE"]) == [
        {"DOMAIN": "AE", "USUBJID": "p1", "AESEQ": 1, "AETERM": "Lung infection",
         "AEBODSYS": "Infections and infestations", "AETOXGR": 2, "AESTDTC": "2020-01-20"},
        {"DOMAIN": "AE", "USUBJID": "p1", "AESEQ": 2, "AETERM": "Febrile neutropenia",
         "AEBODSYS": "Blood and lymphatic system disorders", "AETOXGR": 3, "AESTDTC": "2020-02-03"},
    ]  # fmt: skip


def test_hand_made_records_need_no_store_and_empty_domains_are_left_out():
    """Unstored records (date objects, missing columns) give the same shapes; tables without rows no domain."""
    domains = sdtm_domains(history(), default_dictionary())
    assert set(domains) == {"EX", "SUPPEX", "RS"}
    assert domains["EX"]["EXSTDTC"].tolist() == ["2020-02-10", "2020-02-05", "2020-01-31", "2020-01-21",
                                                 "2020-01-23"]  # fmt: skip
    assert sdtm_domains(Records({}), default_dictionary()) == {}


def test_test_codes_are_at_most_8_characters_deterministic_and_distinct():
    assert test_code("anc") == "ANC" and test_code("cd4_abs") == "CD4_ABS" and test_code("il2") == "IL2"
    assert re.fullmatch(r"MPROT[0-9A-Z]{3}", MPROT) and test_code("mprot_serum") == MPROT
    assert test_code("mprot_urine") != MPROT and test_code("mprot_urine").startswith("MPROT")
    codes = {item.code: test_code(item.code) for item in default_dictionary()}
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]{0,7}", c) for c in codes.values())
    assert len(set(codes.values())) == len(codes)


def test_two_items_sharing_a_test_code_are_refused():
    first = "abcde_first"
    twin = next(f"abcde_{k}" for k in range(100_000) if f"abcde_{k}" != first and test_code(f"abcde_{k}")
                == test_code(first))  # fmt: skip
    dictionary = default_dictionary().with_items(*(Item(c, c, "number", "observation") for c in (first, twin)))
    obs = pd.DataFrame({"patient_id": ["p1", "p1"], "item": [first, twin], "date": ["2020-01-02"] * 2,
                        "value": [1.0, 2.0]})  # fmt: skip
    with pytest.raises(InputError, match=f"would share the test code {test_code(first)}"):
        sdtm_domains(Records({"observations": obs}), dictionary)


def test_cli_writes_the_domains_spreadsheet_safe(tmp_path):
    url = f"sqlite:///{tmp_path / 'sdtm.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    Store(url).import_records(_records())
    out = tmp_path / "sdtm"
    result = runner.invoke(app, ["export", "sdtm", "--out-dir", str(out), "--study-id", "ALLO-1", "--db", url])
    assert result.exit_code == 0, result.output
    assert "LB 6 rows, EX 8 rows, SUPPEX 11 rows, RS 7 rows, AE 2 rows" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["ae.csv", "ex.csv", "lb.csv", "rs.csv", "suppex.csv"]
    lb = pd.read_csv(out / "lb.csv", dtype=str, keep_default_na=False)
    assert lb["STUDYID"].unique().tolist() == ["ALLO-1"]
    assert "'=x" in lb["LBSPEC"].tolist() and "=x" not in lb["LBSPEC"].tolist()  # neutralised, not evaluated
    assert lb.loc[lb["LBORRESU"] == "umol/L", "LBORRES"].tolist() == ["17.1", "17.1"]
    assert lb["LBDY"].tolist() == ["", "", "31", "", "", ""]  # integers stay integers
    ae = pd.read_csv(out / "ae.csv", dtype=str)
    assert ae["AETOXGR"].tolist() == ["2", "3"] and ae["AESEQ"].tolist() == ["1", "2"]


def test_cli_on_a_store_without_such_records_writes_header_only_files(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    out = tmp_path / "sdtm"
    result = runner.invoke(app, ["export", "sdtm", "--out-dir", str(out), "--db", url])
    assert result.exit_code == 0, result.output
    assert "LB 0 rows, EX 0 rows, RS 0 rows, AE 0 rows" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["ae.csv", "ex.csv", "lb.csv", "rs.csv"]
    assert (out / "ae.csv").read_text().strip() == "DOMAIN,USUBJID,AESEQ,AETERM,AEBODSYS,AETOXGR,AESTDTC"
    missing = runner.invoke(app, ["export", "sdtm", "--out-dir", str(out), "--db",
                                  f"sqlite:///{tmp_path / 'none.db'}"])  # fmt: skip
    assert missing.exit_code == 1 and "No record store" in missing.output


def test_write_sdtm_returns_the_paths(tmp_path):
    written = write_sdtm(_records(), default_dictionary(), tmp_path / "out", study_id="S")
    assert {k: p.name for k, p in written.items()} == {"LB": "lb.csv", "EX": "ex.csv", "SUPPEX": "suppex.csv",
                                                       "RS": "rs.csv", "AE": "ae.csv"}  # fmt: skip
