"""Wide files (one row per patient, or per patient and visit; one column per item and visit) reshaped through the
data dictionary to observations, assessments and attributes: imported and loaded back, converted from the unit the
mapping names, refused all at once for unknown columns, with problems naming the wide file's own lines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
from test_derive import history

from allotrack.cli import app
from allotrack.errors import InputError
from allotrack.records import ValidationError
from allotrack.records.dictionary import default_dictionary
from allotrack.records.importers import load_mapping, read_tables
from allotrack.records.importers.wide import reshape_wide
from allotrack.records.store import Store


@pytest.fixture
def store(tmp_path):
    """A SQLite store holding the five patients of the hand-worked history."""
    s = Store(f"sqlite:///{tmp_path / 'wide.db'}")
    s.init()
    s.import_records(history())
    yield s
    s.engine.dispose()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def mapping(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "mapping.toml", text)


CYTOKINES = "patient_id,il6_day0,il6_day1,il6_day7\np1,12.5,340,8.1\np2,20,,15\n"
VISITS = '[wide."cytokines".visits]\nday0 = "day 0"\nday1 = "day 1"\nday7 = "day 7"\n'


def test_a_cytokine_file_with_a_column_per_visit_gives_one_observation_per_filled_cell(store, tmp_path):
    path = write(tmp_path / "cytokines.csv", CYTOKINES)
    records = read_tables([path], mapping(tmp_path, VISITS), dictionary=store.dictionary())
    obs = records["observations"]
    assert obs[["patient_id", "item", "visit", "value"]].values.tolist() == [
        ["p1", "il6", "day 0", "12.5"], ["p1", "il6", "day 1", "340"], ["p1", "il6", "day 7", "8.1"],
        ["p2", "il6", "day 0", "20"], ["p2", "il6", "day 7", "15"]]  # fmt: skip
    assert records.origins["observations"]["line"].tolist() == [2, 2, 2, 3, 3]
    assert set(records.origins["observations"]["file"]) == {"cytokines.csv"}
    assert set(records.tables) == {"observations"}
    assert store.import_records(records).added == {"observations": 5}
    back = store.load(tables=["observations"])["observations"].sort_values(["patient_id", "visit"])
    assert back[["patient_id", "item", "visit"]].values.tolist() == [
        ["p1", "il6", "day 0"], ["p1", "il6", "day 1"], ["p1", "il6", "day 7"], ["p2", "il6", "day 0"],
        ["p2", "il6", "day 7"]]  # fmt: skip
    np.testing.assert_allclose(back["value"], [12.5, 340, 8.1, 20, 15])
    assert back["unit"].tolist() == ["pg/mL"] * 5 and back["date"].isna().all()
    assert store.import_records(read_tables([path], mapping(tmp_path, VISITS))).added == {}  # a re-import adds nothing


def test_a_visit_per_row_file_takes_visit_and_date_per_row_and_converts_the_named_unit(store, tmp_path):
    """Bilirubin 17.1 µmol/L → 17.1 × 584.66 / 10 000 = 0.99977 mg/dL, the reported value kept; an empty cell
    gives no row."""
    path = write(tmp_path / "labs_wide.csv", "patient_id,visit,date,anc,plt,bili\n"
                                             "p1,day 7,2020-01-08,0.4,21,17.1\n"
                                             "p2,day 14,2020-01-15,1.2,,34.2\n")  # fmt: skip
    layout = mapping(tmp_path, '[wide."labs_wide"]\nvisit_column = "visit"\ndate_column = "date"\n'
                               'units = { bili = "umol/L" }\n')  # fmt: skip
    report = store.import_records(read_tables([path], layout, dictionary=store.dictionary()))
    assert report.added == {"observations": 5}
    back = store.load(tables=["observations"])["observations"].sort_values(["patient_id", "item"])
    assert back[["patient_id", "item", "visit"]].values.tolist() == [
        ["p1", "anc", "day 7"], ["p1", "bili", "day 7"], ["p1", "plt", "day 7"], ["p2", "anc", "day 14"],
        ["p2", "bili", "day 14"]]  # fmt: skip
    assert [d.date().isoformat() for d in back["date"]] == ["2020-01-08"] * 3 + ["2020-01-15"] * 2
    np.testing.assert_allclose(back["value"], [0.4, 17.1 * 584.66 / 10_000, 21, 1.2, 34.2 * 584.66 / 10_000])
    assert back["value"].iloc[1] == pytest.approx(0.99977, abs=1e-5)
    assert back["unit"].tolist() == ["10*9/L", "mg/dL", "10*9/L", "10*9/L", "mg/dL"]
    assert back["reported"].tolist() == [None, "17.1 umol/L", None, None, "34.2 umol/L"]


def test_patient_level_columns_give_attributes(store, tmp_path):
    path = write(tmp_path / "baseline.csv", "patient_id,cd20_status,prior_allo_hct\np1,positive,0\np2,not tested,\n"
                                            "p3,,1\n")  # fmt: skip
    records = read_tables([path], mapping(tmp_path, '[wide."baseline"]\n'))
    assert records["attributes"].columns.tolist() == ["patient_id", "item", "value", "value_text", "date"]
    assert records.origins["attributes"]["line"].tolist() == [2, 2, 3, 4]
    assert store.import_records(records).added == {"attributes": 4}
    back = store.load(tables=["attributes"])["attributes"].sort_values(["patient_id", "item"])
    assert back[["patient_id", "item", "value_text"]].values.tolist() == [
        ["p1", "cd20_status", "positive"], ["p1", "prior_allo_hct", None], ["p2", "cd20_status", "not_tested"],
        ["p3", "prior_allo_hct", None]]  # fmt: skip
    assert back["value"].tolist()[1] == 0 and back["value"].tolist()[3] == 1


def test_columns_that_are_not_items_are_refused_all_at_once_with_close_item_codes():
    frame = pd.DataFrame({"patient_id": ["p1"], "il_6": ["3"], "anc": ["1.0"], "xyz": ["1"], "ANC": ["2"],
                          "plt_d0": ["30"]})  # fmt: skip
    with pytest.raises(InputError) as info:
        reshape_wide(frame, default_dictionary(), source_label="labs_wide.csv", lines=np.array([2]),
                     visits={"day0": "day 0"})  # fmt: skip
    message = str(info.value)
    assert message.startswith("labs_wide.csv: columns il_6, xyz, ANC, plt_d0 are neither items of the data "
                              "dictionary nor patient_id/visit/date; close item codes: il_6 → il6")  # fmt: skip
    assert "ANC → anc" in message
    assert "plt_d0 → item plt at visit suffix 'd0'? (the visits are day0" in message
    with pytest.raises(InputError, match=r"rituximab \(item 'rituximab' is of kind intervention\)"):
        reshape_wide(pd.DataFrame({"patient_id": ["p1"], "rituximab": ["375"]}), default_dictionary(),
                     source_label="x.csv", lines=np.array([2]))  # fmt: skip
    with pytest.raises(InputError, match=r"x.csv: the units name items wrongly: 'billi' is not an item .*bili"):
        reshape_wide(pd.DataFrame({"patient_id": ["p1"], "bili": ["1"]}), default_dictionary(),
                     source_label="x.csv", lines=np.array([2]), units={"billi": "umol/L"})  # fmt: skip
    with pytest.raises(InputError, match="x.csv: there is no column 'Visit' \\(named as its visit_column\\)"):
        reshape_wide(pd.DataFrame({"patient_id": ["p1"], "anc": ["1"]}), default_dictionary(),
                     source_label="x.csv", lines=np.array([2]), visit_column="Visit")  # fmt: skip


def test_the_mapping_section_is_checked_naming_section_and_key(tmp_path):
    with pytest.raises(InputError, match=r'\[wide."labs"\] has unknown key\(s\) \[\'visit\'\]'):
        load_mapping(mapping(tmp_path, '[wide."labs"]\nvisit = "v"\n'))
    with pytest.raises(InputError, match=r'\[wide."labs"\] visits must be a table of non-empty texts'):
        load_mapping(mapping(tmp_path, '[wide."labs"]\nvisits = { day0 = 0 }\n'))
    with pytest.raises(InputError, match=r"labs both in \[tables\] and in \[wide\]"):
        load_mapping(mapping(tmp_path, '[tables]\nlabs = "observations"\n[wide."labs"]\n'))
    layout = load_mapping(mapping(tmp_path, VISITS)).wide["cytokines"]
    assert dict(layout.visits) == {"day0": "day 0", "day1": "day 1", "day7": "day 7"} and layout.visit_column is None


def test_a_problem_in_a_reshaped_cell_names_the_wide_file_and_its_line(store, tmp_path):
    path = write(tmp_path / "labs_wide.csv", "patient_id,visit,anc,plt\np1,day 7,0.4,21\np2,day 7,-0.5,30\n"
                                             "p3,,1.0,\n")  # fmt: skip
    with pytest.raises(ValidationError) as info:
        store.import_records(read_tables([path], mapping(tmp_path, '[wide."labs_wide"]\n')))
    assert [str(p) for p in info.value.problems] == [
        "observations (labs_wide.csv line 3), column 'value' (value -0.5): item 'anc' must be ≥ 0 10*9/L",
        "observations (labs_wide.csv line 4), column 'date': a date or a visit label is required"]  # fmt: skip


def test_the_import_command_reads_the_wide_section_of_the_mapping(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["db", "init", "--db", url]).exit_code == 0
    files = []
    for name, frame in history().tables.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        files.append(str(tmp_path / f"{name}.csv"))
    files.append(str(write(tmp_path / "cytokines.csv", CYTOKINES)))
    result = runner.invoke(app, ["import", *files, "--mapping", str(mapping(tmp_path, VISITS)), "--db", url])
    assert result.exit_code == 0, result.output
    assert "5 observations" in result.output
    store = Store(url)
    try:
        assert sorted(store.load(tables=["observations"])["observations"]["visit"]) == ["day 0", "day 0", "day 1",
                                                                                         "day 7", "day 7"]
    finally:
        store.engine.dispose()
    bad = write(tmp_path / "cytokines.csv", "patient_id,il6_day0,il_6\np1,1,2\n")
    result = runner.invoke(app, ["import", str(bad), "--mapping", str(tmp_path / "mapping.toml"), "--db", url])
    assert result.exit_code == 1
    assert "Import refused: cytokines.csv: column il_6 is neither" in " ".join(result.output.split())
