"""The record store on SQLite and PostgreSQL, importers and the CLI: all-or-nothing, idempotent imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
from test_derive import history

from allotrack.cli import app
from allotrack.errors import AllotrackError, InputError
from allotrack.records import Records, ValidationError
from allotrack.records.importers import read_tables
from allotrack.records.store import METADATA, Store

# the tables of revision 0001 that are still record tables (labs, chimerism, gvhd, crs and responses were retired
# by 0007: see test_migration_0007.py)
OLD_TABLES = ("patients", "donors", "courses", "infusions", "adverse_events", "relapses", "deaths", "follow_up")


def history_core() -> Records:
    """history() without its assessments (GVHD grades and responses) and so without its relapses (a relapse needs
    a remission before it): what revisions 0001-0006 can hold in the tables that still exist."""
    return Records({name: frame for name, frame in history().tables.items() if name in OLD_TABLES
                    and name != "relapses"})  # fmt: skip
PG_URL = os.environ.get("ALLOTRACK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> bool:
    try:
        with sa.create_engine(PG_URL).connect():
            return True
    except Exception:
        return False


def _drop_everything(s: Store) -> None:
    """Drop every table the database holds (today's, retired ones and alembic's)."""
    found = sa.MetaData()
    found.reflect(s.engine)
    found.drop_all(s.engine)


def _fresh_postgres_store() -> Store:
    """The test server's database, emptied (tests share it, so each starts from nothing)."""
    if not _postgres_available():
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432 (CI and the developer machines have one)")
    s = Store(PG_URL)
    _drop_everything(s)
    return s


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'records.db'}") if request.param == "sqlite" else _fresh_postgres_store()
    s.init()
    yield s
    if request.param == "postgresql":
        _drop_everything(s)
    s.engine.dispose()


def test_import_round_trip_and_idempotent(store):
    first = store.import_records(history(), user="coordinator", centre="C01")
    assert first.added == {"patients": 5, "donors": 6, "courses": 6, "infusions": 5, "assessments": 7,
                           "relapses": 2, "deaths": 4, "follow_up": 5}  # fmt: skip
    again = store.import_records(history())
    assert again.added == {} and again.already_present["patients"] == 5
    back = store.load()
    original = history()
    for table in ("patients", "deaths", "infusions"):
        assert len(back[table]) == len(original[table])
    assert set(back["deaths"]["date"].dt.strftime("%Y-%m-%d")) == {
        "2020-10-27",
        "2020-05-30",
        "2020-03-31",
        "2020-04-30",
    }
    with store.engine.connect() as conn:
        audit = conn.execute(
            sa.select(METADATA.tables["patients"].c.created_by, METADATA.tables["patients"].c.centre_code)
        ).all()
    assert set(audit) == {("coordinator", "C01")}


def test_invalid_import_writes_nothing(store):
    store.import_records(history())
    more = {"patients": pd.DataFrame({"patient_id": ["p6"], "sex": ["F"], "diagnosis": ["AML"], "diagnosis_date": ["2021-01-01"]}),
            "deaths": pd.DataFrame({"patient_id": ["p6", "p7"], "date": ["2020-12-01", "2021-02-01"]})}  # fmt: skip
    from allotrack.records import Records

    with pytest.raises(ValidationError) as info:
        store.import_records(Records(more))
    rules = [p.rule for p in info.value.problems]
    assert "death before diagnosis" in rules and "refers to an unknown patient" in rules
    assert len(store.load()["patients"]) == 5  # the valid p6 row was not written either


def test_dry_run_reports_without_writing(store):
    report = store.import_records(history(), dry_run=True)
    assert report.dry_run and report.added["patients"] == 5
    assert len(store.load()["patients"]) == 0


def test_csv_excel_and_mapping(tmp_path):
    h = history()
    pats = (
        h["patients"]
        .rename(columns={"patient_id": "Patient ID"})
        .assign(sex=["male", "female", "male", "female", "male"])
    )
    pats.to_csv(tmp_path / "Baseline.csv", index=False)
    with pd.ExcelWriter(tmp_path / "study.xlsx") as xl:
        for name in ("deaths", "follow_up"):
            h[name].to_excel(xl, sheet_name=name, index=False)
    mapping = tmp_path / "map.toml"
    mapping.write_text('[tables]\n"Baseline" = "patients"\n\n[patients.rename]\n"Patient ID" = "patient_id"\n\n'
                       '[patients.recode.sex]\n"male" = "M"\n"female" = "F"\n')  # fmt: skip
    recs = read_tables([tmp_path / "Baseline.csv", tmp_path / "study.xlsx"], mapping)
    assert list(recs["patients"]["sex"]) == ["M", "F", "M", "F", "M"]
    assert list(recs["patients"]["patient_id"]) == ["p1", "p2", "p3", "p4", "p5"]
    assert len(recs["deaths"]) == 4
    with pytest.raises(InputError, match="'Baseline' in Baseline.csv is not a record table"):
        read_tables([tmp_path / "Baseline.csv"])
    bad_map = tmp_path / "bad.toml"
    bad_map.write_text('[tables]\n"Baseline" = "people"\n')
    with pytest.raises(InputError, match="unknown table 'people'"):
        read_tables([tmp_path / "Baseline.csv"], bad_map)


def test_cli_import_and_derive(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, frame in history().tables.items():
        frame.to_csv(f"{name}.csv", index=False)
    files = sorted(str(p) for p in tmp_path.glob("*.csv"))
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert runner.invoke(app, ["db", "init", "--db", db]).exit_code == 0
    r = runner.invoke(app, ["import", *files, "--db", db])
    assert r.exit_code == 0 and "Added: 5 patients" in r.output
    assert "nothing new" in runner.invoke(app, ["import", *files, "--db", db]).output
    r = runner.invoke(app, ["derive", "--db", db, "--out", "d.csv", "--endpoints", "os,cir"])
    assert r.exit_code == 0, r.output
    d = pd.read_csv(tmp_path / "d.csv")
    assert list(d["os_time"]) == [300, 150, 400, 90, 120]
    pd.DataFrame({"patient_id": ["p9"], "date": ["2020-05-01"]}).to_csv("deaths_extra.csv", index=False)
    Path("deaths_extra.csv").rename("deaths.csv")
    r = runner.invoke(app, ["import", "deaths.csv", "--db", db])
    assert r.exit_code == 1 and "refers to an unknown patient" in r.output and "p9" not in r.output


cells = st.one_of(st.text(max_size=12), st.sampled_from(["", "2020-01-01", "M", "F", "AML", "-3", "1e400", "NaN"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(cells, cells, cells, cells), min_size=1, max_size=8))
def test_fuzzed_csv_only_fails_with_validation_errors(tmp_path, rows):
    path = tmp_path / "patients.csv"
    pd.DataFrame(rows, columns=["patient_id", "sex", "diagnosis", "diagnosis_date"]).to_csv(path, index=False)
    from allotrack.records import validate_records

    try:
        validate_records(read_tables([path]))
    except AllotrackError:
        pass


def test_cli_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    s = Store(db)
    s.init()
    s.import_records(history())
    runner = CliRunner()
    r = runner.invoke(app, ["export", "adtte", "--db", db, "--out", "a.csv", "--endpoints", "os,cir"])
    assert r.exit_code == 0, r.output
    a = pd.read_csv(tmp_path / "a.csv")
    assert len(a) == 5 + 4 and set(a["CNSR"]) == {0, 1, 2}
    (tmp_path / "secret.txt").write_text("0123456789abcdef-secret")
    r = runner.invoke(app, ["export", "deidentified", "--db", db, "--secret-file", "secret.txt", "--out-dir", "deid"])
    assert r.exit_code == 0, r.output
    pats = pd.read_csv(tmp_path / "deid" / "patients.csv")
    assert not set(pats["patient_id"]) & {"p1", "p2", "p3", "p4", "p5"}
    assert len(pd.read_csv(tmp_path / "deidentification-key.csv")) == 5


def test_redcap_export_with_repeating_instrument(tmp_path):
    from allotrack.records import validate_records
    from allotrack.records.importers import read_redcap

    dictionary = pd.DataFrame({
        "Variable / Field Name": ["record_id", "sex", "diagnosis", "dx_date", "resp_date", "resp_cat", "death_date"],
        "Form Name": ["baseline", "baseline", "baseline", "baseline", "response", "response", "outcome"],
        "Field Type": ["text", "radio", "text", "text", "text", "dropdown", "text"],
        "Choices, Calculations, OR Slider Labels": ["", "1, F | 2, M", "", "", "", "1, CR | 2, CRi | 3, no response", ""],
    })  # fmt: skip
    export = pd.DataFrame({
        "record_id": ["1", "1", "1", "2"],
        "redcap_repeat_instrument": ["", "response", "response", ""],
        "redcap_repeat_instance": ["", "1", "2", ""],
        "sex": ["2", "", "", "1"], "diagnosis": ["AML", "", "", "AML"], "dx_date": ["2021-03-01", "", "", "2021-04-02"],
        "resp_date": ["", "2021-04-10", "2021-06-01", ""], "resp_cat": ["", "2", "1", ""],
        "death_date": ["2022-01-05", "", "", ""],
    })  # fmt: skip
    dictionary.to_csv(tmp_path / "dd.csv", index=False)
    export.to_csv(tmp_path / "export.csv", index=False)
    mapping = tmp_path / "redcap.toml"
    mapping.write_text('[tables]\n"baseline" = "patients"\n"response" = "responses"\n"outcome" = "deaths"\n\n'
                       '[patients.rename]\n"dx_date" = "diagnosis_date"\n\n'
                       '[responses.rename]\n"resp_date" = "date"\n"resp_cat" = "category"\n\n'
                       '[deaths.rename]\n"death_date" = "date"\n')  # fmt: skip
    recs = read_redcap(tmp_path / "export.csv", tmp_path / "dd.csv", mapping)
    assert list(recs["patients"]["sex"]) == ["M", "F"]
    # the retired responses table: its rows are assessments of the item disease_response
    assert list(recs["assessments"]["value_text"]) == ["CRi", "CR"]
    assert set(recs["assessments"]["item"]) == {"disease_response"}
    assert list(recs["deaths"]["patient_id"]) == ["1"]
    checked = validate_records(recs)
    assert len(checked["patients"]) == 2 and len(checked["assessments"]) == 2


def test_import_errors_point_at_rows_of_the_incoming_file(store):
    store.import_records(history())
    from allotrack.records import Records

    extra = pd.DataFrame({"patient_id": ["p1", "p8"], "date": ["2020-02-01", "2020-02-02"], "category": ["CR", "CR"]})
    with pytest.raises(ValidationError) as info:
        store.import_records(Records.from_frames(responses=extra))
    problems = [(p.table, p.row, p.rule) for p in info.value.problems]
    assert problems == [("assessments", 1, "refers to an unknown patient")]  # row 1 of the new rows, not the table


def test_migrations_build_exactly_the_models(store):
    """Alembic's autogenerate comparison finds nothing to change after ``init`` (migrations == models)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), METADATA) == []


def test_the_database_refuses_a_second_current_record_with_the_same_natural_key(store):
    """Not only a Python check: a raw INSERT of another row with a stored patient's key fails; once the stored row
    is soft-deleted, its key is free again."""
    store.import_records(history())
    table = METADATA.tables["follow_up"]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.patient_id == "p1")).mappings().one()
    other = {k: v for k, v in row.items() if k != "row_id"} | {"record_hash": 12345}  # other content, same key
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(table.insert().values(**other))
    with store.engine.begin() as conn:
        conn.execute(table.update().where(table.c.row_id == row["row_id"]).values(deleted=True, deleted_reason="x"))
        conn.execute(table.insert().values(**other))
    assert len(store.load()["follow_up"]) == 5


def _write_as_0001(store: Store) -> None:
    """Rows as revision 0001 stored them: record_hash as 16 hex digits (the hash's definition, :func:`row_hashes`)."""
    from datetime import UTC, datetime

    from allotrack.records.hashing import row_hashes
    from allotrack.records.validate import type_tables

    typed, problems = type_tables(history_core())
    assert problems == []
    with store.engine.begin() as conn:
        for name, frame in typed.items():
            if not len(frame):
                continue
            rows = frame.astype(object).where(frame.notna(), None).assign(record_hash=row_hashes(frame, name))
            for c in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[c]):
                    rows[c] = [None if pd.isna(v) else v.date() for v in frame[c]]
            audit = {"created_by": "import", "created_at": datetime.now(UTC), "deleted": False}
            table = sa.table(name, *[sa.column(c) for c in [*rows.columns, *audit]])
            conn.execute(table.insert(), [{**r, **audit} for r in rows.to_dict("records")])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_0001_keeps_stored_records_and_their_hashes(tmp_path, backend):
    s = Store(f"sqlite:///{tmp_path / 'old.db'}") if backend == "sqlite" else _fresh_postgres_store()
    s.init("0001")
    _write_as_0001(s)
    before = s.load(tables=OLD_TABLES)
    s.init("0006")
    after = s.load(tables=OLD_TABLES)
    for name in ("patients", "courses", "deaths"):
        pd.testing.assert_frame_equal(after[name], before[name])
    s.downgrade("0001")  # and back: 0001's hex digits again
    with s.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT record_hash FROM deaths")).scalars())
    from allotrack.records.hashing import row_hashes
    from allotrack.records.validate import type_tables

    assert stored == set(row_hashes(type_tables(history_core())[0]["deaths"], "deaths"))
    s.init()
    assert s.import_records(history_core()).added == {}  # converted hashes still recognise every stored row
    if backend == "postgresql":
        _drop_everything(s)


def _index_names(store) -> set[str]:
    inspector = sa.inspect(store.engine)
    return {ix["name"] for name in ("patients", "assessments", "courses") for ix in inspector.get_indexes(name)}


def test_bulk_import_rebuilds_dropped_indexes(store, monkeypatch):
    from allotrack.records import bulk

    before = _index_names(store)
    assert {"ux_patients_key", "ux_assessments_key", "ux_courses_key", "ix_courses_patient"} <= before
    monkeypatch.setattr(bulk, "REBUILD_MIN_ROWS", 1)  # every table of this small import takes the rebuild path
    report = store.import_records(history())
    assert report.added["patients"] == 5
    assert _index_names(store) == before
    assert store.import_records(history()).added == {}


def test_failed_bulk_write_rolls_back_every_table(store, monkeypatch):
    from allotrack.records import bulk

    real_arrow, real_driver = bulk.arrow_table, bulk.driver_columns

    def broken_arrow(frame, name, audit):  # PostgreSQL path
        table = real_arrow(frame, name, audit)
        return table.append_column("no_such_column", table.column(0)) if name == "deaths" else table

    def broken_driver(frame, name):  # SQLite path
        columns = real_driver(frame, name)
        return {**columns, "no_such_column": columns["record_hash"]} if name == "deaths" else columns

    before = _index_names(store)
    monkeypatch.setattr(bulk, "arrow_table", broken_arrow)
    monkeypatch.setattr(bulk, "driver_columns", broken_driver)
    monkeypatch.setattr(bulk, "REBUILD_MIN_ROWS", 1)  # the index drops are rolled back too
    with pytest.raises(Exception, match="no_such_column"):
        store.import_records(history())
    monkeypatch.undo()
    assert _index_names(store) == before
    assert all(len(frame) == 0 for frame in store.load().tables.values())
    assert store.import_records(history()).added["deaths"] == 4


def test_in_memory_sqlite_uses_the_driver_fallback():
    s = Store("sqlite://")
    s.init()
    assert s.import_records(history()).added["patients"] == 5
    back = s.load()
    assert back["deaths"]["date"].dt.date.tolist() == history()["deaths"]["date"].tolist()


def _reference_row_hashes(frame: pd.DataFrame, table: str) -> list[str]:
    """The content hash as first defined (row by row over text columns): stored hashes must keep matching."""
    from allotrack.records.schema import table_spec

    parts = {}
    for c in table_spec(table).columns:
        col = frame[c.name] if c.name in frame.columns else pd.Series([None] * len(frame))
        if c.kind in ("number", "integer"):
            col = pd.to_numeric(col, errors="coerce").astype("float64")
        parts[c.name] = col.astype("string").fillna("\x00")
    return [f"{int(v):016x}" for v in pd.util.hash_pandas_object(pd.DataFrame(parts), index=False)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", None, "", "1"]),
                          st.one_of(st.none(), st.dates(min_value=pd.Timestamp("1990-01-01").date(),
                                                        max_value=pd.Timestamp("2030-01-01").date())),
                          st.sampled_from(["ANC", "PLT", None]),
                          st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-5, 5))),
                min_size=1, max_size=30))  # fmt: skip
def test_row_hash_matches_its_first_definition(rows):
    from allotrack.records.hashing import row_hashes

    frame = pd.DataFrame(rows, columns=["patient_id", "date", "analyte", "value"])
    frame["date"] = pd.to_datetime(frame["date"])
    assert row_hashes(frame, "labs").tolist() == _reference_row_hashes(frame, "labs")


def test_row_hash_on_typed_history_matches_its_first_definition():
    from allotrack.records.hashing import row_hashes
    from allotrack.records.validate import type_tables

    typed, problems = type_tables(history())
    assert problems == []
    for name, frame in typed.items():
        assert row_hashes(frame, name).tolist() == _reference_row_hashes(frame, name), name


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_hex_digits_round_trip(values):
    import numpy as np

    from allotrack.records.hashing import hex_digits

    hashes = np.array(values, dtype=np.uint64)
    text = hex_digits(hashes)
    assert [len(t) for t in text] == [16] * len(values)
    assert text.tolist() == [f"{v:016x}" for v in values]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_to_0005_keeps_every_record_and_retires_duplicate_keys_with_an_audit_row(tmp_path, backend):
    """A store made before natural keys, holding the concurrent-import bug's double patient: after the upgrade
    every record is still there with the same values, the later double is soft-deleted with a reason and audited,
    and a re-import recognises every stored row."""
    from datetime import UTC, datetime

    from allotrack.records.hashing import hash_values
    from allotrack.records.validate import type_tables

    s = Store(f"sqlite:///{tmp_path / 'old.db'}") if backend == "sqlite" else _fresh_postgres_store()
    s.init("0004")
    typed, _ = type_tables(history_core())
    double = typed["patients"].iloc[[0]].assign(sex="F")  # p1 again, other content
    typed["patients"] = pd.concat([typed["patients"], double], ignore_index=True)
    with s.engine.begin() as conn:
        for name, frame in typed.items():
            if not len(frame):
                continue
            rows = frame.astype(object).where(frame.notna(), None)
            for c in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[c]):
                    rows[c] = [None if pd.isna(v) else v.date() for v in frame[c]]
            rows = rows.assign(record_hash=hash_values(frame, name).view("int64"))
            audit = {"created_by": "import", "created_at": datetime.now(UTC), "deleted": False}
            table = sa.table(name, *[sa.column(c) for c in [*rows.columns, *audit]])
            conn.execute(table.insert(), [{**r, **audit} for r in rows.to_dict("records")])
    before = s.load(tables=OLD_TABLES)
    s.init("0006")
    after = s.load(tables=OLD_TABLES)
    for name in ("donors", "courses", "infusions", "deaths", "follow_up"):
        pd.testing.assert_frame_equal(after[name], before[name])
    pd.testing.assert_frame_equal(after["patients"], before["patients"].iloc[:5])
    with s.engine.connect() as conn:
        retired = conn.execute(sa.text("SELECT patient_id, sex, deleted_reason FROM patients WHERE deleted = :d"),
                               {"d": True}).all()  # fmt: skip
        audit_rows = conn.execute(sa.text("SELECT username, action, table_name, patient_id FROM audit_log")).all()
    assert [(p, sex) for p, sex, _ in retired] == [("p1", "F")]
    assert retired[0][2].startswith("migration 0005: another current record (row 1) has the same natural key")
    assert audit_rows == [("migration 0005", "delete", "patients", "p1")]
    s.init()
    assert s.import_records(history_core()).added == {}  # key and content hashes recognise every stored row
    if backend == "postgresql":
        _drop_everything(s)
