"""`allotrack randomise`: set up, allocate and export the log from the command line, with the same rules as the
web (an account's role and centre), and one-line refusals."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from allotrack.cli import app
from allotrack.records.schema import Records
from allotrack.records.store import Store
from allotrack.web.auth import add_user


def test_set_up_allocate_and_log_with_the_accounts_rights(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(url)
    store.init()
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "centre": ["C1", "C1", "C2"], "sex": ["F", "M", "F"],
                             "diagnosis": "AML", "diagnosis_date": "2021-01-04", "age_at_diagnosis": 50})
    enrolments = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "study": "T1", "enrolment_date": "2021-02-01",
                               "eligible": [True, False, True]})
    for centre in ("C1", "C2"):
        ids = set(patients.loc[patients["centre"] == centre, "patient_id"])
        store.import_records(Records.from_frames(patients=patients[patients["patient_id"].isin(ids)],
                                                 enrolments=enrolments[enrolments["patient_id"].isin(ids)]),
                             user="setup", centre=centre)  # fmt: skip
    add_user(store.engine, "admin", "a long password", "administrator")
    add_user(store.engine, "dm1", "a long password", "data_manager", "C1")
    runner = CliRunner()
    base = ["--db", url]
    refused = runner.invoke(app, ["randomise", "setup", "T1", "--arms", "A:1,B:1", "--seed", "5", "--user", "dm1",
                                  "--stratify-by", "centre", "--strata", "centre=C1,centre=C2", *base])
    assert refused.exit_code == 1 and "only an administrator sets up a randomisation" in refused.output
    ok = runner.invoke(app, ["randomise", "setup", "T1", "--arms", "A:1,B:1", "--seed", "5", "--user", "admin",
                             "--stratify-by", "centre", "--strata", "centre=C1,centre=C2", "--per-stratum", "8",
                             *base])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "T1 set up (blocks; 8 list positions)" in ok.output or "list positions" in ok.output
    done = runner.invoke(app, ["randomise", "allocate", "T1", "P1", "--user", "dm1", *base])
    assert done.exit_code == 0 and "P1: " in done.output and "(allocation 1, stratum centre=C1)" in done.output
    for patient, why in (("P2", "eligible = yes"), ("P3", "no such patient in your data access group"),
                         ("P1", "already randomised")):  # fmt: skip
        out = runner.invoke(app, ["randomise", "allocate", "T1", patient, "--user", "dm1", *base])
        assert out.exit_code == 1 and why in out.output and "Traceback" not in out.output, out.output
    log = runner.invoke(app, ["randomise", "log", "T1", "--user", "admin", "--out", str(tmp_path / "log.csv"), *base])
    assert log.exit_code == 0, log.output
    written = pd.read_csv(tmp_path / "log.csv")
    assert written["patient_id"].tolist() == ["P1"] and written["allocated_by"].tolist() == ["dm1"]
    bad = runner.invoke(app, ["randomise", "setup", "T2", "--arms", "A", "--seed", "5", "--user", "admin", *base])
    assert bad.exit_code == 1 and "--arms must read name:ratio" in bad.output
