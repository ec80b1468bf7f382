"""The dictionary-driven record kinds (observations, interventions, assessments, attributes) and the study-design
records (enrolments, populations, matched sets): validated against the store's data dictionary, stored in its
units, and back unchanged; a new dictionary item needs no code change."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parent))
from test_derive import history
from test_store_import import store  # noqa: F401  (the SQLite + PostgreSQL store fixture)

from allotrack.cli import app
from allotrack.errors import InputError
from allotrack.records import Records, ValidationError
from allotrack.records.dictionary import Item, default_dictionary
from allotrack.records.store import AUDIT_LOG, Store


def _with(**frames: pd.DataFrame) -> Records:
    """The hand-worked history plus ``frames``, whose rows come first (so problems name their row numbers)."""
    base = dict(history().tables)
    for name, frame in frames.items():
        base[name] = pd.concat([frame, base[name]], ignore_index=True) if name in base else frame
    return Records(base)


def _problems(store: Store, records: Records) -> list[str]:
    with pytest.raises(ValidationError) as info:
        store.import_records(records)
    return [str(p) for p in info.value.problems]


def test_observations_are_stored_in_the_dictionary_unit_with_what_was_reported(store):
    """Bilirubin 17.1 µmol/L → 17.1 / 17.104 = 0.99977 mg/dL (584.66 g/mol); M-protein 3.2 g/dL → 32 g/L;
    ANC 1500 /µL → 1.5 × 10⁹/L; values already in the dictionary unit are untouched."""
    obs = pd.DataFrame({
        "patient_id": ["p1", "p1", "p2", "p3", "p3"], "item": ["bili", "bili", "mprot_serum", "anc", "anc"],
        "date": ["2020-02-01", "2020-02-02", "2020-02-01", "2020-02-01", "2020-02-02"],
        "value": [17.1, 1.2, 3.2, 1500, 0.8], "unit": ["µmol/L", "mg/dL", "g/dL", "cells/µL", None],
    })  # fmt: skip
    report = store.import_records(_with(observations=obs))
    assert report.added["observations"] == 5
    back = store.load(tables=["observations"])["observations"].sort_values(["patient_id", "item", "date"])
    np.testing.assert_allclose(back["value"], [17.1 * 584.66 / 10_000, 1.2, 32.0, 1.5, 0.8], rtol=1e-12)
    assert back["unit"].tolist() == ["mg/dL", "mg/dL", "g/L", "10*9/L", "10*9/L"]
    assert back["reported"].tolist() == ["17.1 µmol/L", None, "3.2 g/dL", "1500 cells/µL", None]
    assert store.import_records(_with(observations=obs)).added == {}  # a re-import recognises the converted rows


def test_an_unknown_item_is_refused_naming_it_with_close_matches(store):
    obs = pd.DataFrame({"patient_id": ["p1"], "item": ["anx"], "date": ["2020-02-01"], "value": [1.0]})
    assert _problems(store, _with(observations=obs)) == [
        "observations, row 1, column 'item' (value 'anx'): unknown item (not in the data dictionary; close matches: "
        "anc); add it to the dictionary or correct the code"]  # fmt: skip


def test_items_of_another_kind_ranges_units_choices_and_dates(store):
    obs = pd.DataFrame({
        "patient_id": ["p1"] * 5, "item": ["agvhd_grade", "anc", "bili", "anc", "plt"],
        "date": ["2020-02-01", "2020-02-02", "2020-02-03", None, "2020-02-05"],
        "value": [2, -1, 1.0, 1.0, 5000], "unit": [None, None, "mg", None, None],
    })  # fmt: skip
    found = _problems(store, _with(observations=obs))
    assert "observations, row 1, column 'item' (value 'agvhd_grade'): item 'agvhd_grade' is an assessment in the " \
           "data dictionary, not an observation (give its rows in the assessments table, or set its kind: kind = " \
           "\"observation\" in the TOML dictionary, @ALLOTRACK-KIND=observation in a REDCap dictionary's Field " \
           "Annotation)" in found
    assert "observations, row 2, column 'value' (value -1.0): item 'anc' must be ≥ 0 10*9/L" in found
    assert any(p.startswith("observations, row 3, column 'unit' (value 'mg'): cannot be converted to the dictionary's "
                            "unit mg/dL for 'bili'") for p in found)  # fmt: skip
    assert "observations, row 4, column 'date': a date or a visit label is required" in found
    ass = pd.DataFrame({"patient_id": ["p2", "p2"], "item": ["gvhd_response", "gvhd_response"],
                        "visit": ["week 4", "day 56"], "value_text": ["complete response", "cured"]})  # fmt: skip
    found = _problems(store, _with(assessments=ass))
    assert found == ["assessments, row 2, column 'value_text' (value 'cured'): must be one of the choices of "
                     "'gvhd_response': ['CR', 'NR', 'PR', 'PROG'] (or their labels)"]  # fmt: skip


def test_an_implausible_value_is_kept_with_a_warning(store):
    obs = pd.DataFrame({"patient_id": ["p1"], "item": ["anc"], "date": ["2020-02-01"], "value": [150.0],
                        "unit": ["10^9/L"]})  # fmt: skip
    report = store.import_records(_with(observations=obs))
    assert report.warnings == ["observations: 1 value(s) of 'anc' outside the plausible range –100 10*9/L (kept; "
                               "check them)"]  # fmt: skip


def test_every_kind_comes_back_unchanged(store):
    """One record of each new kind (labels of choices stored as codes; yes/no as 1/0)."""
    frames = {
        "observations": pd.DataFrame({"patient_id": ["p1", "p1"], "item": ["il6", "dsa_mfi"], "visit": ["day 7", None],
                                      "date": ["2020-01-08", "2020-01-02"], "value": [35.5, 2400.0],
                                      "unit": ["pg/mL", "{MFI}"], "specimen": ["serum", "A*02:01"]}),
        "interventions": pd.DataFrame({"patient_id": ["p2"], "agent": ["basiliximab"], "start_date": ["2020-02-01"],
                                       "dose": [20.0], "unit": ["mg"], "route": ["iv"], "course_id": ["c3"]}),
        "assessments": pd.DataFrame({"patient_id": ["p2", "p2"], "item": ["gvhd_response", "agvhd_skin_stage"],
                                     "date": ["2020-03-30", "2020-03-01"], "visit": ["week 4", None],
                                     "value_text": ["CR", "3"],
                                     "rule": [None, "MAGIC 2016"], "inputs": [None, '{"rash_bsa_percent": 60}']}),
        "attributes": pd.DataFrame({"patient_id": ["p1", "p1"], "item": ["cd20_status", "prior_allo_hct"],
                                    "value_text": ["not tested", None], "value": [None, 1]}),
        "enrolments": pd.DataFrame({"patient_id": ["p1"], "study": ["MSC-RCT"], "enrolment_date": ["2020-01-05"],
                                    "eligible": ["yes"], "arm": ["MSC + basiliximab"],
                                    "randomisation_date": ["2020-01-06"], "stratum": ["centre A"],
                                    "allocation_number": [17]}),
        "populations": pd.DataFrame({"patient_id": ["p1", "p1"], "study": ["MSC-RCT"] * 2,
                                     "population": ["ITT", "per-protocol"], "included": ["yes", "no"],
                                     "reason": [None, "missed week-4 visit"]}),
        "matched_sets": pd.DataFrame({"patient_id": ["p3", "p4"], "study": ["NK"] * 2, "set_id": ["S1", "S1"],
                                      "role": ["case", "control"], "weight": [1.0, 1.0]}),
    }  # fmt: skip
    report = store.import_records(_with(**frames))
    in_history = {k: len(history()[k]) for k in frames}  # history's GVHD grades and responses are assessments
    assert {k: report.added[k] for k in frames} == {k: len(v) + in_history[k] for k, v in frames.items()}
    back = store.load(tables=list(frames))
    assert back["attributes"].sort_values("item")["value_text"].tolist() == ["not_tested", None]
    assert back["assessments"].set_index("item").loc["agvhd_skin_stage", "inputs"] == '{"rash_bsa_percent": 60}'
    assert back["enrolments"]["allocation_number"].tolist() == [17.0]
    assert back["populations"]["included"].tolist() == [True, False]
    assert back["matched_sets"]["role"].tolist() == ["case", "control"]
    assert back["interventions"]["course_id"].tolist() == ["c3"]
    assert store.import_records(_with(**frames)).added == {}


def test_a_new_dictionary_item_needs_no_code_change_and_stranding_is_refused(store):
    obs = pd.DataFrame({"patient_id": ["p1"], "item": ["ferritin"], "date": ["2020-02-01"], "value": [1200.0],
                        "unit": ["ug/L"]})  # fmt: skip
    assert "unknown item" in _problems(store, _with(observations=obs))[0]
    ferritin = Item("ferritin", "Ferritin", "number", "observation", unit="ng/mL", low=0)
    store.save_dictionary(default_dictionary().with_items(ferritin), user="statistician", reason="iron overload")
    assert store.import_records(_with(observations=obs)).added["observations"] == 1
    assert store.load(tables=["observations"])["observations"]["value"].tolist() == [1200.0]  # ug/L = ng/mL
    with pytest.raises(InputError, match="'ferritin' is used by stored observations but missing"):
        store.save_dictionary(default_dictionary(), user="someone")
    with store.engine.connect() as conn:
        audit = conn.execute(sa.select(AUDIT_LOG.c.username, AUDIT_LOG.c.reason, AUDIT_LOG.c.new_values)
                             .where(AUDIT_LOG.c.action == "dictionary")).all()  # fmt: skip
    assert audit == [("statistician", "iron overload", '{"added": ["ferritin"], "items": ' +
                      str(len(default_dictionary()) + 1) + "}")]  # fmt: skip


def test_a_unit_that_cannot_be_converted_names_only_its_own_rows(store):
    """Haemoglobin in mmol/L needs a molar mass the dictionary does not give; the g/L row beside it converts."""
    obs = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "item": "hb",
                        "date": ["2020-02-01", "2020-02-02", "2020-02-01"], "value": [5.0, 95.0, 9.1],
                        "unit": ["mmol/L", "g/L", None]})  # fmt: skip
    found = _problems(store, _with(observations=obs))
    assert len(found) == 1 and found[0].startswith("observations, row 1, column 'unit' (value 'mmol/L'): cannot be "
                                                   "converted to the dictionary's unit g/dL for 'hb'")  # fmt: skip
    report = store.import_records(_with(observations=obs.iloc[1:]))
    assert store.load(tables=["observations"])["observations"].sort_values("value")["value"].tolist() == [9.1, 9.5]
    assert report.warnings == ["observations: 1 value(s) of 'hb' have no unit and were taken to be in the "
                               "dictionary's unit g/dL (give the unit if they are not)"]  # fmt: skip


def test_choice_labels_in_any_case_numbers_in_the_wrong_column_and_converted_values_out_of_range(store):
    rows = pd.DataFrame({"patient_id": ["p1", "p1", "p3"], "item": ["cgvhd_severity", "agvhd_grade", "bili"],
                         "date": ["2020-06-01", "2020-06-02", "2020-02-01"], "value_text": ["Mild", None, None],
                         "value": [None, 2.0, 2.5], "unit": [None, None, "mmol/L"]})  # fmt: skip
    assessments, observations = rows.iloc[:2].drop(columns="unit"), rows.iloc[[2]].drop(columns="value_text")
    found = _problems(store, _with(assessments=assessments, observations=observations))
    # 2.5 mmol/L bilirubin is 146.2 mg/dL (584.66 g/mol): out of range, and the message says what was typed
    assert found[0].startswith("observations, row 1, column 'value' (value 146.16")
    assert found[0].endswith("): item 'bili' must be ≤ 100 mg/dL (reported as 2.5 mmol/L)")
    assert found[1:] == ["assessments, row 2, column 'value_text' (value 2.0): item 'agvhd_grade' is a choice: give "
                         "its code in 'value_text', not a number in 'value'"]  # fmt: skip
    report = store.import_records(_with(assessments=assessments.iloc[[0]]))
    assert report.added["assessments"] >= 1
    stored = store.load(tables=["assessments"])["assessments"]
    assert stored.loc[stored["item"] == "cgvhd_severity", "value_text"].tolist() == ["mild"]


def test_a_dictionary_change_is_checked_against_the_stored_records(store):
    import dataclasses

    store.import_records(_with(observations=pd.DataFrame({"patient_id": ["p1"], "item": ["bili"],
                                                          "date": ["2020-02-01"], "value": [1.1]})))  # fmt: skip
    base = store.dictionary()

    def refused(*items: Item) -> str:
        with pytest.raises(InputError) as info:
            store.save_dictionary(base.with_items(*items), user="dm", reason="test")
        return str(info.value)

    bili = base.item("bili")
    assert "'bili' is used by stored observations: its unit cannot change from mg/dL to umol/L" in refused(
        dataclasses.replace(bili, unit="umol/L"))
    assert "the condition of 'bili' cannot be checked (cannot read" in refused(
        dataclasses.replace(bili, condition="[hb] = 'x"))
    assert "names 'cd20_stat', which the dictionary does not have" in refused(
        dataclasses.replace(bili, condition="[cd20_stat] = 'positive'"))
    assert "1 stored record(s) break the new condition or requirement of 'bili'" in refused(
        dataclasses.replace(bili, condition="[cd20_status] = 'positive'"))
    assert store.dictionary() == base  # nothing was saved


def test_dictionary_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    shown = runner.invoke(app, ["dictionary", "show", "--kind", "intervention", "--db", url])
    assert shown.exit_code == 0 and "basiliximab" in shown.output and "anc" not in shown.output
    exported = tmp_path / "dictionary.csv"
    assert runner.invoke(app, ["dictionary", "export", str(exported), "--db", url]).exit_code == 0
    text = exported.read_text()
    assert text.startswith("Variable / Field Name,Form Name,Section Header,Field Type,Field Label")
    with_new = text + 'ferritin,labs,,text,Ferritin,,,number,0,,,,,,,,,"@ALLOTRACK-KIND=observation @ALLOTRACK-UNIT=""ng/mL"""\n'
    (tmp_path / "new.csv").write_text(with_new)
    saved = runner.invoke(app, ["dictionary", "import", str(tmp_path / "new.csv"), "--reason", "ferritin", "--db", url])
    assert saved.exit_code == 0 and "new: ferritin" in saved.output, saved.output
    assert Store(url).dictionary().item("ferritin").unit == "ng/mL"


def test_template_writes_every_table_and_the_demo_example_imports(tmp_path):
    from allotrack.records.importers import read_tables
    from allotrack.records.schema import TABLES

    result = CliRunner().invoke(app, ["template", "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    for name, spec in TABLES.items():
        assert (tmp_path / "t" / f"{name}.csv").read_text().strip() == ",".join(c.name for c in spec.columns)
    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    store.init()
    examples = sorted((tmp_path / "t" / "example").glob("*.csv"))
    assert store.import_records(read_tables(examples)).added["patients"] == 29
    empty = store.import_records(read_tables(sorted((tmp_path / "t").glob("*.csv"))))
    assert empty.added == {} and len(empty.warnings) == len(TABLES)  # header-only files: one warning each


def test_chronology_of_interventions_and_enrolments_and_raw_inputs_are_checked(store):
    interventions = pd.DataFrame({"patient_id": ["p1"], "agent": ["methylprednisolone"], "start_date": ["2020-02-10"],
                                  "end_date": ["2020-02-01"], "dose": [2.0], "unit": ["mg/kg"], "per_kg": [True]})
    enrolments = pd.DataFrame({"patient_id": ["p2", "p4"], "study": "RCT", "enrolment_date": ["2020-01-10",
                               "2020-04-15"], "randomisation_date": ["2020-01-05", "2020-04-16"]})  # fmt: skip
    assessments = pd.DataFrame({"patient_id": ["p3"], "item": ["crs_grade"], "date": ["2020-02-01"],
                                "value_text": ["1"], "inputs": ["{temperature: 38.5"]})  # fmt: skip
    found = _problems(store, _with(interventions=interventions, enrolments=enrolments, assessments=assessments))
    assert sorted(found) == sorted([
        "interventions, row 1, column 'end_date' (value '2020-02-01'): intervention ends before it starts",
        "enrolments, row 1, column 'randomisation_date' (value '2020-01-05'): randomised before enrolment",
        "enrolments, row 2, column 'enrolment_date' (value '2020-04-15'): after the patient's death",  # p4 died d90
        "enrolments, row 2, column 'randomisation_date' (value '2020-04-16'): after the patient's death",
        "follow_up, row 4, column 'last_contact_date' (value '2020-03-31'): last contact before the patient's latest "
        "dated record",  # the enrolment after death is p4's latest dated record
        'assessments, row 1, column \'inputs\': not a JSON object (raw inputs are written as {"name": value, ...}, '
        'e.g. {"skin_bsa": 30})'])  # fmt: skip
