"""What an import says: the file's own line numbers, stored records named by key, strict dates and encodings,
every problem in one pass, exact duplicates, corrections with a reason and their audit rows, incremental reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
sys.path.insert(0, str(Path(__file__).parent))
from test_derive import history
from test_store_import import store  # noqa: F401  (the SQLite + PostgreSQL store fixture)

from allotrack.errors import InputError
from allotrack.records import Records, ValidationError
from allotrack.records.importers import read_tables
from allotrack.records.store import AUDIT_LOG, STUDY_LOCK, Store


def write_study(folder: Path, records: Records | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in (records or history()).tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        paths.append(folder / f"{name}.csv")
    return sorted(paths)


def problems_of(store: Store, records: Records, **options) -> list[str]:
    with pytest.raises(ValidationError) as info:
        store.import_records(records, **options)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def sqlite_store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'messages.db'}")
    s.init()
    yield s
    s.engine.dispose()


def test_problems_name_the_file_line_with_the_header_as_line_1(sqlite_store, tmp_path):
    """A blank line keeps its number, and a quoted cell over two lines moves the next row's line on."""
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,sex,diagnosis,diagnosis_date\n"
                    "q1,F,AML,2020-01-01\n"
                    "\n"
                    'q2,F,"AML\nwith a two-line note",2020-01-01\n'
                    "q3,X,AML,2020-01-01\n")  # fmt: skip
    found = problems_of(sqlite_store, read_tables([path]))
    assert found == ["patients (patients.csv line 6), column 'sex' (value 'X'): must be one of ['F', 'M']"]


def test_every_problem_is_reported_in_one_pass(sqlite_store, tmp_path):
    """A bad date and a duplicate patient id in one file: both at once (the duplicate used to wait for the date
    to be fixed)."""
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,2020-01-01\nq2,F,AML,31/12/2020\n"
                    "q1,M,AML,2020-01-01\n")  # fmt: skip
    found = problems_of(sqlite_store, read_tables([path]))
    assert len(found) == 2
    assert found[0].startswith("patients (patients.csv line 3), column 'diagnosis_date' (value '31/12/2020'): not a "
                               "date in the format YYYY-MM-DD")  # fmt: skip
    assert found[1] == ("patients (patients.csv line 4), column 'patient_id': same patient_id as patients.csv line 2 "
                        "with other values (one record per patient_id)")  # fmt: skip


@pytest.mark.parametrize("value", ["03/04/2001", "31/12/2001", "2001", "5 May 2021", "2001-3-4", "20010304"])
def test_dates_are_never_guessed(sqlite_store, tmp_path, value):
    path = tmp_path / "patients.csv"
    path.write_text(f"patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,{value}\n")
    (found,) = problems_of(sqlite_store, read_tables([path]))
    assert found == (f"patients (patients.csv line 2), column 'diagnosis_date' (value '{value}'): not a date in the "
                     "format YYYY-MM-DD (ISO 8601); another format must be named in the mapping file (date_format), "
                     "it is never guessed")  # fmt: skip


def test_a_date_format_named_in_the_mapping_applies_to_the_whole_column(sqlite_store, tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,03/04/2001\nq2,F,AML,2001-04-03\n")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[patients]\ndate_format = "%d/%m/%Y"\n')
    (found,) = problems_of(sqlite_store, read_tables([path], mapping))
    assert found == ("patients (patients.csv line 3), column 'diagnosis_date' (value '2001-04-03'): not a date in the "
                     "format %d/%m/%Y (the mapping file's date_format for this column)")  # fmt: skip
    path.write_text("patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,03/04/2001\nq2,F,AML,31/12/2001\n")
    sqlite_store.import_records(read_tables([path], mapping))
    stored = sqlite_store.load()["patients"].set_index("patient_id")["diagnosis_date"]
    assert stored.dt.strftime("%Y-%m-%d").to_dict() == {"q1": "2001-04-03", "q2": "2001-12-31"}  # day first


def test_a_mapping_date_format_that_names_no_date_is_refused(tmp_path):
    mapping = tmp_path / "map.toml"
    mapping.write_text('date_format = "%d/%m"\n')
    with pytest.raises(InputError, match="not a date format naming day, month and year"):
        read_tables([], mapping)


def test_undecodable_and_binary_files_are_refused_by_name_line_and_byte(tmp_path):
    latin1 = tmp_path / "patients.csv"
    latin1.write_bytes("patient_id,sex,diagnosis,diagnosis_date\nq1,F,AML,2020-01-01\nq2,F,Lymphome à cellules B,"
                       "2020-01-01\n".encode("latin-1"))  # fmt: skip
    with pytest.raises(InputError) as info:
        read_tables([latin1])
    assert str(info.value).startswith("patients.csv line 3: byte 0xe0 at offset 74 is not valid utf-8")
    mapping = tmp_path / "map.toml"
    mapping.write_text('encoding = "latin-1"\n')
    assert read_tables([latin1], mapping)["patients"]["diagnosis"].iloc[1] == "Lymphome à cellules B"
    binary = tmp_path / "labs.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match=r"labs.csv is not a text file \(it holds NUL bytes\)"):
        read_tables([binary])


def test_empty_and_header_only_files_and_empty_sheets(sqlite_store, tmp_path):
    empty = tmp_path / "patients.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="patients.csv is empty: a table file needs a header line"):
        read_tables([empty])
    header_only = tmp_path / "relapses.csv"
    header_only.write_text("patient_id,date,kind\n")
    workbook = tmp_path / "study.xlsx"
    with pd.ExcelWriter(workbook) as xl:
        pd.DataFrame().to_excel(xl, sheet_name="deaths", index=False)
        history()["follow_up"].head(0).to_excel(xl, sheet_name="follow_up", index=False)
    records = read_tables([header_only, workbook])
    assert records.warnings == ("relapses.csv has a header but no rows", "study.xlsx, sheet deaths is empty",
                                "study.xlsx, sheet follow_up has a header but no rows")  # fmt: skip
    report = sqlite_store.import_records(records)
    assert report.added == {} and report.warnings == list(records.warnings)


def test_excel_rows_are_named_by_their_spreadsheet_row(sqlite_store, tmp_path):
    workbook = tmp_path / "study.xlsx"
    frame = pd.DataFrame({"patient_id": ["q1", None, "q2"], "sex": ["F", None, "Q"], "diagnosis": ["AML", None, "AML"],
                          "diagnosis_date": ["2020-01-01", None, "2020-01-01"]})  # fmt: skip
    with pd.ExcelWriter(workbook) as xl:
        frame.to_excel(xl, sheet_name="patients", index=False)
    (found,) = problems_of(sqlite_store, read_tables([workbook]))
    assert found == "patients (study.xlsx, sheet patients line 4), column 'sex' (value 'Q'): must be one of ['F', 'M']"


def test_exact_duplicate_rows_are_refused_or_imported_once_with_a_warning(sqlite_store, tmp_path):
    records = history()
    obs = pd.DataFrame({"patient_id": ["p1"] * 3, "item": "anc", "date": ["2020-01-05", "2020-01-06", "2020-01-05"],
                        "value": [0.4, 0.6, 0.4], "unit": "10*9/L"})  # fmt: skip
    paths = write_study(tmp_path, Records({**records.tables, "observations": obs}))
    found = problems_of(sqlite_store, read_tables(paths))
    assert found == ["observations (observations.csv line 4): exact copy of observations.csv line 2 (remove it, or "
                     "import with --drop-duplicates to import it once)"]  # fmt: skip
    report = sqlite_store.import_records(read_tables(paths), drop_duplicates=True)
    assert report.added["observations"] == 2
    assert report.warnings == ["observations: 1 exact copies of earlier rows were imported once (observations.csv "
                               "line 4)"]  # fmt: skip


def test_a_file_of_a_retired_table_is_read_as_its_record_kind(sqlite_store, tmp_path):
    """labs.csv written for allotrack before migration 0007 still imports: its rows are observations (the analyte
    is the dictionary item), said in a warning; a column the old table did not have is refused, not dropped."""
    paths = write_study(tmp_path, history())
    labs = tmp_path / "labs.csv"
    labs.write_text("patient_id,date,analyte,value,unit,transfused\np1,2020-01-05,ANC,0.4,10^9/L,\n"
                    "p1,2020-01-05,PLT,15,10^9/L,yes\np1,2020-01-06,BILI,34.2,umol/L,\n")  # fmt: skip
    records = read_tables([*paths, labs])
    assert "labs.csv: the labs table is retired; its 3 row(s) were read as observations" in records.warnings
    sqlite_store.import_records(records)
    back = sqlite_store.load(tables=["observations"])["observations"].sort_values(["date", "item"])
    assert sorted(back["item"]) == ["anc", "bili", "plt"] and set(back["unit"]) == {"10*9/L", "mg/dL"}
    assert dict(zip(back["item"], back["value"], strict=True)) == pytest.approx(
        {"anc": 0.4, "plt": 15.0, "bili": 34.2 * 584.66 / 10_000})  # umol/L -> mg/dL (584.66 g/mol)
    assert back.set_index("item")["transfused"].fillna(False).to_dict() == {"anc": False, "plt": True, "bili": False}
    labs.write_text("patient_id,date,analyte,value,unit,colour\np1,2020-01-05,ANC,0.4,10^9/L,red\n")
    with pytest.raises(InputError, match="column\\(s\\) 'colour' are not columns of the retired labs table"):
        read_tables([*paths, labs])


def test_a_clash_with_a_stored_record_names_it_and_the_change(store, tmp_path):
    store.import_records(history())
    corrected = history().tables["follow_up"].copy()
    corrected.loc[0, "last_contact_date"] = pd.Timestamp("2021-03-01").date()
    path = tmp_path / "follow_up.csv"
    corrected.to_csv(path, index=False)
    assert problems_of(store, read_tables([path])) == [
        "follow_up (follow_up.csv line 2): a stored record has this patient_id with other values (last_contact_date: "
        "2020-10-27 → 2021-03-01); import with --update and a reason to correct it"]  # fmt: skip


def test_a_problem_in_a_stored_record_names_its_table_and_key(store, tmp_path):
    """A death recorded before a stored course: the stored course is named by its key, not a row position."""
    store.import_records(Records({k: v for k, v in history().tables.items() if k != "deaths"}))
    path = tmp_path / "deaths.csv"
    pd.DataFrame({"patient_id": ["p1"], "date": ["2020-01-31"]}).to_csv(path, index=False)
    found = problems_of(store, read_tables([path]))
    assert "courses, stored record course_id 'c2', column 'start_date' (value '2020-03-01'): after the patient's death" \
        in found


def test_a_correction_needs_update_and_a_reason_and_audits_every_field(store, tmp_path):
    store.import_records(history(), user="first", centre="C01")
    patients = history().tables["patients"].copy()
    patients.loc[1, ["sex", "diagnosis"]] = ["M", "MDS"]
    path = tmp_path / "patients.csv"
    patients.to_csv(path, index=False)
    preview = store.import_records(read_tables([path]), update=True, dry_run=True)
    assert [(c.table, c.record, c.column, c.old, c.new) for c in preview.changes] == [
        ("patients", "patient_id 'p2'", "sex", "F", "M"), ("patients", "patient_id 'p2'", "diagnosis", "AML", "MDS")]
    assert store.load()["patients"].set_index("patient_id").loc["p2", "sex"] == "F"  # the preview wrote nothing
    assert problems_of(store, read_tables([path]), update=True, reason="  ") == [
        "import: corrections of stored records need a reason"]  # fmt: skip
    report = store.import_records(read_tables([path]), update=True, reason="sex and diagnosis checked in the chart",
                                  user="monitor", centre="C01")  # fmt: skip
    assert report.updated == {"patients": 1} and report.added == {} and report.already_present == {"patients": 4}
    assert store.load()["patients"].set_index("patient_id").loc["p2", ["sex", "diagnosis"]].tolist() == ["M", "MDS"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(AUDIT_LOG.c.username, AUDIT_LOG.c.action, AUDIT_LOG.c.table_name,
                                      AUDIT_LOG.c.patient_id, AUDIT_LOG.c.old_values, AUDIT_LOG.c.new_values,
                                      AUDIT_LOG.c.reason).where(AUDIT_LOG.c.action == "update")).all()  # fmt: skip
    assert sorted(rows) == [
        ("monitor", "update", "patients", "p2", '{"diagnosis": "AML"}', '{"diagnosis": "MDS"}',
         "sex and diagnosis checked in the chart"),
        ("monitor", "update", "patients", "p2", '{"sex": "F"}', '{"sex": "M"}', "sex and diagnosis checked in the chart"),
    ]  # fmt: skip
    assert store.import_records(read_tables([path]), update=True).updated == {}  # applied: now already present


def test_an_import_audits_each_patient_with_its_tables_and_fields(store):
    store.import_records(history(), user="coordinator", centre="C01")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(AUDIT_LOG.c.patient_id, AUDIT_LOG.c.new_values, AUDIT_LOG.c.username)
                            .where(AUDIT_LOG.c.action == "import")).all()  # fmt: skip
    by_patient = {pid: json.loads(values) for pid, values, _ in rows}
    assert sorted(by_patient) == ["p1", "p2", "p3", "p4", "p5"]
    assert by_patient["p2"]["assessments"] == {"rows": 3, "fields": ["patient_id", "item", "date", "value_text"]}
    assert by_patient["p2"]["donors"]["rows"] == 2
    assert {u for _, _, u in rows} == {"coordinator"}


def test_a_locked_study_takes_no_import_without_a_reason(store):
    from datetime import UTC, datetime

    with store.engine.begin() as conn:
        conn.execute(STUDY_LOCK.insert().values(locked=True, at=datetime.now(UTC), username="pi", reason="final"))
    assert problems_of(store, history()) == ["import: the study data are locked: give a reason for this import"]
    assert store.import_records(history(), reason="late data agreed with the PI").added["patients"] == 5


def test_validation_reads_only_the_patients_the_import_touches(store, monkeypatch):
    from allotrack.records import importing

    store.import_records(history())
    seen = {}
    real = importing._touched_records

    def spy(conn, incoming, touched):
        out = real(conn, incoming, touched)
        seen.update({name: set(frame["patient_id"]) for name, frame in out.items() if len(frame)})
        return out

    monkeypatch.setattr(importing, "_touched_records", spy)
    more = Records.from_frames(
        patients=pd.DataFrame({"patient_id": ["p9"], "sex": ["F"], "diagnosis": ["AML"], "diagnosis_date": ["2020-01-01"]}),
        labs=pd.DataFrame({"patient_id": ["p2"], "date": ["2020-02-01"], "analyte": ["ANC"], "value": [1.0],
                           "unit": ["10^9/L"]}),
    )  # fmt: skip
    report = store.import_records(more)
    assert report.added == {"patients": 1, "observations": 1}
    assert set().union(*seen.values()) == {"p2"}  # p2's stored records were read; p1, p3, p4, p5's were not


def test_a_donor_id_of_another_patient_is_refused_without_naming_that_patient(store):
    store.import_records(history())
    clash = Records.from_frames(
        patients=pd.DataFrame({"patient_id": ["p9"], "sex": ["F"], "diagnosis": ["AML"], "diagnosis_date": ["2020-01-01"]}),
        donors=pd.DataFrame({"donor_id": ["d1"], "patient_id": ["p9"], "relation": ["sibling"]}),
    )  # fmt: skip
    found = problems_of(store, clash, update=True)
    assert found == ["donors, row 1, column 'donor_id': this donor_id is already used by a stored record of another "
                     "patient or centre"]  # fmt: skip
    assert "p1" not in found[0]


def test_a_clean_import_of_the_demo_files_raises_no_warning(sqlite_store, tmp_path):
    """Every warning is an error here: reading the demo study's CSV files and importing them twice (the second time
    everything is already present) must not emit any."""
    import warnings

    from allotrack.study.demo import demo_records

    paths = write_study(tmp_path / "demo", demo_records())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = sqlite_store.import_records(read_tables(paths))
        again = sqlite_store.import_records(read_tables(paths))
    assert first.added["patients"] == 29 and first.warnings == []
    assert again.added == {} and again.already_present["observations"] == first.added["observations"] == 8035


def test_content_and_key_hashes_computed_together_equal_their_definitions():
    """One pass over the columns gives bit for bit the content hash and the natural-key hash (every table of the
    demo study and of the hand-worked history, missing values included)."""
    from allotrack.records.hashing import content_and_key_values, hash_values, key_values
    from allotrack.records.validate import type_tables
    from allotrack.study.demo import demo_records

    for records in (history(), demo_records()):
        typed, _ = type_tables(records)
        for name, frame in typed.items():
            content, key = content_and_key_values(frame, name)
            np.testing.assert_array_equal(content, hash_values(frame, name))
            np.testing.assert_array_equal(key, key_values(frame, name))
