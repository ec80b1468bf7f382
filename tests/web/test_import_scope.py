"""Imports keep to the importer's centre as forms do (issue 15): another centre's patient is answered exactly like
an unknown one (also in a dry run, so nothing of it can be probed), its id cannot be taken over, and an import
without a centre (an administrator's, the CLI's) adds rows under the centre of the patient they belong to."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from webfixtures import _reset, empty_store_url, web  # noqa: F401  (web: the fixture)

from allotrack.records.schema import Records
from allotrack.records.store import Store
from allotrack.records.validate import ValidationError
from allotrack.web.auth import User
from allotrack.web.data import patient_records


def _patient(pid: str) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [pid], "centre": ["site"], "sex": ["F"], "diagnosis": ["AML"],
                         "diagnosis_date": ["2021-01-04"], "age_at_diagnosis": [50]})  # fmt: skip


def _death(pid: str, day: str) -> Records:
    return Records.from_frames(deaths=pd.DataFrame({"patient_id": [pid], "date": [day], "cause": ["relapse"]}))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = empty_store_url(request.param, tmp_path)
    s = Store(url)
    s.init()
    s.import_records(Records.from_frames(patients=_patient("A1")), user="dm1", centre="C1")
    s.import_records(Records.from_frames(patients=_patient("B1"), donors=pd.DataFrame(
        {"donor_id": ["B1-D1"], "patient_id": ["B1"], "relation": ["sibling"]}), follow_up=pd.DataFrame(
        {"patient_id": ["B1"], "last_contact_date": ["2022-01-01"]})), user="dm2", centre="C2")  # fmt: skip
    yield s
    s.engine.dispose()
    if request.param == "postgresql":
        _reset(url)


def _refusal(store: Store, records: Records, centre: str | None, dry_run: bool) -> str:
    with pytest.raises(ValidationError) as err:
        store.import_records(records, user="someone", centre=centre, dry_run=dry_run)
    return str(err.value)


@pytest.mark.parametrize("dry_run", [True, False])
@pytest.mark.parametrize("day", ["2021-06-01", "2023-01-01"])  # before and after C2's last contact
def test_another_centres_patient_is_answered_exactly_like_an_unknown_one(store, dry_run, day):
    foreign = _refusal(store, _death("B1", day), "C1", dry_run)
    unknown = _refusal(store, _death("ZZ", day), "C1", dry_run)
    assert foreign == unknown
    assert "refers to an unknown patient" in foreign and "2022-01-01" not in foreign
    assert store.load()["deaths"].empty
    store.import_records(_death("B1", "2022-01-01"), user="dm2", centre="C2")  # C2's own, real death
    assert store.load()["deaths"]["patient_id"].tolist() == ["B1"]


def test_another_centres_patient_id_and_donor_id_cannot_be_taken_over(store):
    taken = _refusal(store, Records.from_frames(patients=_patient("B1")), "C1", False)
    assert "patient_id" in taken and "already used by a stored record of another patient or centre" in taken
    assert "C2" not in taken
    donor = Records.from_frames(patients=_patient("A2"), donors=pd.DataFrame(
        {"donor_id": ["B1-D1"], "patient_id": ["A2"], "relation": ["sibling"]}))  # fmt: skip
    assert "donor_id" in (said := _refusal(store, donor, "C1", False)) and "already used" in said and "B1'" not in said
    stored = store.load()
    assert stored["patients"]["patient_id"].tolist() == ["A1", "B1"] and len(stored["donors"]) == 1


def test_an_import_without_a_centre_adds_rows_under_the_patients_own_centre(store):
    store.import_records(_death("B1", "2022-01-01"), user="admin")
    with store.engine.connect() as conn:
        centre = conn.execute(sa.text("SELECT centre_code FROM deaths WHERE patient_id = 'B1'")).scalar()
    assert centre == "C2"
    dm2 = User(5, "dm2", "data_manager", "C2")
    assert len(patient_records(store.engine, dm2, "B1")["deaths"]) == 1  # C2 sees what the administrator added


# ---------------------------------------------------------------------------------------- through the web page
def _upload(client, name: str, text: str, **fields: str):
    from webfixtures import import_result, page_csrf

    token = page_csrf(client)
    return import_result(client, client.post("/import", data={"csrf_token": token, **fields},
                                             files=[("files", (name, text, "text/csv"))]))  # fmt: skip


def test_the_import_page_scopes_a_data_manager_and_makes_an_administrator_choose_the_centre(web):
    from webfixtures import login, page_csrf

    dm1, admin = login(web, "dm1"), login(web, "admin")
    c2_patient = "p1"  # of centre C2 (webfixtures)
    foreign = _upload(dm1, "deaths.csv", f"patient_id,date,cause\n{c2_patient},2030-01-01,relapse\n")
    unknown = _upload(dm1, "deaths.csv", "patient_id,date,cause\nZZ9,2030-01-01,relapse\n")
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.text.replace(c2_patient, "ZZ9").count("refers to an unknown patient") == 1
    refused = _upload(admin, "patients.csv", "patient_id,centre,sex,diagnosis,diagnosis_date,age_at_diagnosis\n"
                      "ADM1,site,F,AML,2021-01-04,50\n")  # fmt: skip
    assert refused.status_code == 422 and "choose the centre the imported records belong to" in refused.text
    checked = _upload(admin, "patients.csv", "patient_id,centre,sex,diagnosis,diagnosis_date,age_at_diagnosis\n"
                      "ADM1,site,F,AML,2021-01-04,50\n", centre="C2")  # fmt: skip
    assert checked.status_code == 200 and "Centre of the imported records: <strong>C2</strong>" in checked.text
    pending = checked.text.split('action="/import/')[1].split("/commit")[0]
    assert admin.post(f"/import/{pending}/commit", data={"csrf_token": page_csrf(admin)}).status_code == 303
    with web.state.store.engine.connect() as conn:
        centre = conn.execute(sa.text("SELECT centre_code FROM patients WHERE patient_id = 'ADM1'")).scalar()
    assert centre == "C2"
    assert "ADM1" in login(web, "dm2").get("/patients?q=ADM1").text
