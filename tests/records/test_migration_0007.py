"""Migration 0007: a store written by allotrack at revision 0006 (``reference/data/store_0006.json``, made by
``reference/make_store_0006.py`` with the code of that revision) is upgraded; every record of the five retired
tables is still there, in its new kind, with the same values, and nothing else changed (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_store_import import PG_URL, _drop_everything, _fresh_postgres_store

from allotrack.records import views
from allotrack.records.schema import RETIRED_TABLES, TABLES, Records
from allotrack.records.store import Store
from allotrack.records.tables import typed_frame
from allotrack.records.units import normalise_unit

DUMP = json.loads((Path(__file__).parents[1] / "reference" / "data" / "store_0006.json").read_text())
CORE = ("patients", "donors", "courses", "infusions", "adverse_events", "relapses", "deaths", "follow_up")
KEYS = {"labs": ["patient_id", "date", "analyte"], "chimerism": ["patient_id", "date", "assay", "lineage"],
        "gvhd": ["patient_id", "date", "kind"], "crs": ["patient_id", "date"], "responses": ["patient_id", "date"]}


def _insert_dump(s: Store) -> None:
    """Every stored row of the dump, as it was stored (row ids, hashes, audit columns)."""
    found = sa.MetaData()
    found.reflect(s.engine)
    with s.engine.begin() as conn:
        for name, dump in DUMP.items():
            table = found.tables[name]
            rows = [dict(zip(dump["columns"], values, strict=True)) for values in dump["rows"]]
            for row in rows:
                for column in table.columns:
                    value = row.get(column.name)
                    if value is None:
                        continue
                    if isinstance(column.type, sa.DateTime):
                        row[column.name] = datetime.fromisoformat(value).replace(tzinfo=UTC)
                    elif isinstance(column.type, sa.Date):
                        row[column.name] = datetime.fromisoformat(value).date()
                    elif isinstance(column.type, sa.Boolean):
                        row[column.name] = bool(value)
            conn.execute(table.insert(), rows)
        if s.engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for name in DUMP:
                key = "audit_id" if name == "audit_log" else "row_id"
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', '{key}'), "
                                     f"(SELECT MAX({key}) FROM {name}))"))  # fmt: skip


def _retired_rows(s: Store, name: str) -> pd.DataFrame:
    """A retired table's rows (current and deleted), typed as that table was, with their store columns."""
    spec = RETIRED_TABLES[name]
    columns = [c.name for c in spec.columns]
    with s.engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(columns)}, deleted, deleted_reason, created_by, "
                                    f"centre_code FROM {name} ORDER BY row_id")).all()  # fmt: skip
    frame = pd.DataFrame([tuple(r) for r in rows], columns=[*columns, "deleted", "deleted_reason", "created_by",
                                                            "centre_code"], dtype=object)  # fmt: skip
    frame["deleted"] = frame["deleted"].map(bool)
    for c in spec.columns:
        if c.kind == "bool":
            frame[c.name] = frame[c.name].map(lambda v: None if v is None else bool(v)).astype(object)
    return typed_frame(frame, spec, extra=("deleted", "deleted_reason", "created_by", "centre_code"))


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request, tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'old.db'}") if request.param == "sqlite" else _fresh_postgres_store()
    s.init("0006")
    _insert_dump(s)
    yield s
    if request.param == "postgresql":
        _drop_everything(Store(PG_URL))
    s.engine.dispose()


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_every_retired_record_is_in_its_new_kind_with_the_same_values(old_store):
    before = {name: _retired_rows(old_store, name) for name in RETIRED_TABLES}
    core_before = old_store.load(tables=CORE)
    assert {name: len(frame) for name, frame in before.items()} == {
        "labs": 1298, "chimerism": 15, "gvhd": 3, "crs": 1, "responses": 7}  # fmt: skip
    old_store.init()
    assert old_store.revision() is not None and not old_store.needs_upgrade()  # upgraded to the newest revision
    assert not {"labs", "chimerism", "gvhd", "crs", "responses"} & set(sa.inspect(old_store.engine).get_table_names())
    after = old_store.load()
    for name in CORE:  # untouched
        pd.testing.assert_frame_equal(after[name], core_before[name])
    assert len(after["observations"]) == 1298 + 15 and len(after["assessments"]) == 3 + 1 + 7

    labs = _sorted(views.counts(after), KEYS["labs"])
    old = _sorted(before["labs"], KEYS["labs"])
    pd.testing.assert_frame_equal(labs[["patient_id", "date", "analyte", "value"]],
                                  old[["patient_id", "date", "analyte", "value"]])  # fmt: skip
    assert labs["transfused"].tolist() == old["transfused"].tolist()
    assert labs["unit"].tolist() == [normalise_unit(u) for u in old["unit"]]  # "10^9/L" is UCUM's "10*9/L"

    chim = _sorted(views.chimerism(after), KEYS["chimerism"])
    old = _sorted(before["chimerism"], KEYS["chimerism"])
    for column in ("patient_id", "date", "donor_percent", "assay", "lineage", "lod_percent", "below_lod"):
        assert chim[column].tolist() == old[column].tolist(), column

    gvhd = _sorted(views.gvhd(after), KEYS["gvhd"])
    old = _sorted(before["gvhd"], KEYS["gvhd"])
    for column in ("patient_id", "date", "kind", "severity", "systemic_therapy"):
        assert gvhd[column].tolist() == old[column].tolist(), column
    np.testing.assert_array_equal(gvhd["grade"], old["grade"])
    assert _sorted(views.crs(after), KEYS["crs"])["grade"].tolist() == [3.0]  # the corrected grade
    resp = _sorted(views.responses(after), KEYS["responses"])
    old = _sorted(before["responses"], KEYS["responses"])
    for column in ("patient_id", "date", "category", "mrd_negative"):
        assert resp[column].tolist() == old[column].tolist(), column

    stored = after["assessments"].set_index("item")
    assert stored.loc["crs_grade", "value_text"] == "3"
    assert json.loads(stored.loc["cgvhd_severity"].set_index("value_text").loc["moderate", "inputs"]) == {
        "systemic_therapy": True}  # fmt: skip


def test_store_columns_audit_references_and_a_reimport(old_store):
    """Centre, creator and soft-delete flags travel with each row; the audit trail's correction of the CRS grade
    now names the assessment it corrected; re-importing the old-shaped rows adds nothing (the migration converts
    exactly as an import does)."""
    before = {name: _retired_rows(old_store, name) for name in RETIRED_TABLES}
    old_store.init()
    with old_store.engine.connect() as conn:
        moved = conn.execute(sa.text("SELECT centre_code, created_by, deleted FROM observations")).all()
        correction = conn.execute(sa.text("SELECT table_name, row_id, old_values, new_values FROM audit_log "
                                          "WHERE action = 'update'")).one()  # fmt: skip
        crs_row = conn.execute(sa.text("SELECT row_id FROM assessments WHERE item = 'crs_grade'")).scalar_one()
        migrated = conn.execute(sa.text("SELECT table_name, new_values FROM audit_log WHERE username = "
                                        "'migration 0007' ORDER BY audit_id")).all()  # fmt: skip
    assert {(c, u, bool(d)) for c, u, d in moved} == {("A", "maker", False)}
    assert (correction[0], correction[1]) == ("assessments", crs_row)
    assert json.loads(correction[2]) == {"grade": 2} and json.loads(correction[3]) == {"grade": 3}
    assert [(t, json.loads(v)["moved_rows"]) for t, v in migrated] == [
        ("labs", 1298), ("chimerism", 15), ("gvhd", 3), ("crs", 1), ("responses", 7)]  # fmt: skip
    old_shaped = {name: frame[[c.name for c in RETIRED_TABLES[name].columns]] for name, frame in before.items()}
    report = old_store.import_records(Records.from_frames(**old_shaped))
    assert report.added == {} and report.already_present == {"observations": 1313, "assessments": 11}


def test_deleted_rows_move_deleted_and_a_taken_key_is_kept_soft_deleted(old_store):
    """A soft-deleted lab stays deleted (with its reason); a lab whose natural key a current observation already
    holds (the same finding typed twice before 0007) is kept, soft-deleted with a reason naming that row."""
    with old_store.engine.begin() as conn:
        lab = conn.execute(sa.text("SELECT * FROM labs WHERE patient_id = 'X-1' AND analyte = 'WBC'")).mappings().one()
        conn.execute(sa.text("UPDATE labs SET deleted = :t, deleted_reason = 'typed twice' WHERE row_id = :i"),
                     {"t": True, "i": lab["row_id"]})  # fmt: skip
        hb = conn.execute(sa.text("SELECT * FROM labs WHERE patient_id = 'X-1' AND analyte = 'HB'")).mappings().one()
        conn.execute(sa.text("INSERT INTO observations (record_hash, key_hash, patient_id, item, date, value, unit, "
                             "created_by, created_at, deleted) VALUES (1, 1, 'X-1', 'hb', :d, 8.2, 'g/dL', 'web', "
                             ":at, :f)"), {"d": hb["date"], "at": datetime.now(UTC), "f": False})  # fmt: skip
    old_store.init()
    with old_store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT item, value, deleted, deleted_reason, row_id FROM observations WHERE "
                                    "patient_id = 'X-1' AND item IN ('wbc', 'hb') ORDER BY row_id")).all()  # fmt: skip
    web_hb = min(rows, key=lambda r: r[4])  # the observation typed at 0006: moved rows come after it
    moved_wbc = next(r for r in rows if r[0] == "wbc")
    moved_hb = next(r for r in rows if r[0] == "hb" and r is not web_hb)
    assert (web_hb[0], web_hb[1], bool(web_hb[2])) == ("hb", 8.2, False)
    assert (moved_wbc[0], bool(moved_wbc[2]), moved_wbc[3]) == ("wbc", True, "typed twice")
    assert (moved_hb[0], moved_hb[1], bool(moved_hb[2])) == ("hb", 8.1, True)
    assert moved_hb[3] == f"migration 0007: observations row {web_hb[4]} has the same natural key"
    assert views.counts(old_store.load(patient_id="X-1"), ("HB",))["value"].tolist() == [8.2]


def test_the_retired_tables_are_in_no_current_table_list():
    assert not set(RETIRED_TABLES) & set(TABLES)
    assert {c.name for c in TABLES["observations"].columns} >= {"method", "transfused"}
    assert "method" in TABLES["observations"].natural_key
