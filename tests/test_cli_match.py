"""`allotrack match`: the plan's [matching] run on the stored records and its matched sets stored as study-design
records — only by an administrator, all or nothing, audited, and the same sets again add nothing."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from typer.testing import CliRunner

from allotrack.cli import app
from allotrack.records.store import Store
from allotrack.study.dataset import analysis_dataset, plan_matching
from allotrack.study.five_studies.nk_registry import nk_registry_records
from allotrack.study.plan import load_plan
from allotrack.study.run import example_plan_path
from allotrack.web.audit import set_lock
from allotrack.web.auth import add_user


def test_match_stores_the_plans_matched_sets_once_for_an_administrator(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(url)
    store.init()
    records = nk_registry_records(np.random.default_rng(3), n_registry=120)
    store.import_records(records, user="setup")
    add_user(store.engine, "admin", "a long password", "administrator")
    add_user(store.engine, "dm", "a long password", "data_manager", "NK-01")
    runner = CliRunner()
    plan = example_plan_path("nk_registry")
    args = ["match", str(plan), "--study", "NCT01904136", "--db", url]

    refused = runner.invoke(app, [*args, "--user", "dm"])
    assert refused.exit_code == 1 and "only an administrator stores a study's matched sets" in refused.output
    set_lock(store.engine, "admin", True, "database lock for the interim analysis")
    locked = runner.invoke(app, [*args, "--user", "admin"])
    assert locked.exit_code == 1 and "locked" in locked.output and len(store.load()["matched_sets"]) == 0
    set_lock(store.engine, "admin", False, "interim analysis done")
    dry = runner.invoke(app, [*args, "--user", "admin", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert len(store.load()["matched_sets"]) == 0

    done = runner.invoke(app, [*args, "--user", "admin"])
    assert done.exit_code == 0, done.output
    stored = store.load()["matched_sets"].sort_values("patient_id").reset_index(drop=True)
    p = load_plan(plan)
    assert p.matching is not None
    result = plan_matching(analysis_dataset(store.load(), p.model_copy(update={"matching": None}), validate=False),
                           p.matching)  # fmt: skip
    expected = result.sets_frame("NCT01904136").sort_values("patient_id").reset_index(drop=True)
    assert stored["patient_id"].tolist() == expected["patient_id"].tolist()
    assert stored["set_id"].tolist() == expected["set_id"].tolist()
    assert stored["role"].tolist() == expected["role"].tolist()
    assert np.allclose(stored["weight"].to_numpy(float), expected["weight"].to_numpy(float))
    # a registry of 120 has no control for some of the 25 cases: they are reported, not stored
    unmatched = len(result.unmatched_treated)
    assert unmatched > 0 and (stored["role"] == "case").sum() == 25 - unmatched
    assert (stored["study"] == "NCT01904136").all()
    assert f"{unmatched} treated patients without a control" in done.output
    assert f"added {len(stored)} matched-set record(s)" in done.output
    with store.engine.connect() as conn:
        audited = conn.execute(sa.text("select count(*) from audit_log where action = 'import' and username = "
                                       "'admin'")).scalar()  # fmt: skip
    assert audited == len(stored)  # one audit row per patient whose matched-set record was added

    again = runner.invoke(app, [*args, "--user", "admin"])
    assert again.exit_code == 0 and "added 0 matched-set record(s) of NCT01904136 (already stored)" in again.output
    assert len(store.load()["matched_sets"]) == len(stored)
