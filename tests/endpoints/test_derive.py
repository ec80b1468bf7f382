"""Endpoint derivation from dated records: hand-worked histories and the myeloid AML trial as records."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE_DIR, dataset

import allotrack as at
from allotrack.endpoints import counting_process, derive_endpoints, landmark
from allotrack.records import Records, ValidationError, validate_records

D0 = date(2020, 1, 1)


def day(k: int) -> date:
    return D0 + timedelta(days=k)


def history() -> Records:
    """Five patients worked by hand (days from diagnosis on day 0):
    p1 CR d30, infusion d40, relapse d200, death d300 -> CIR event, NRM competing (relapse), LFS event d170 after CR
    p2 CR d25, infusion d35, death in CR d150 -> NRM event, CIR competing
    p3 CR d28, infusion d30, lost to follow-up d400 alive in CR -> censored everywhere
    p4 never CR, infusion d20, death d90 -> LFS/CIR undefined, OS event, EFS refractory on day 1
    p5 CR d20, infusion d22, relapse and death on d120 -> relapse wins (CIR event, NRM competing)
    """
    pats = pd.DataFrame({
        "patient_id": ["p1", "p2", "p3", "p4", "p5"], "sex": ["M", "F", "M", "F", "M"], "diagnosis": "AML",
        "diagnosis_date": [day(0)] * 5, "birth_date": [date(1950, 6, 1)] * 5,
    })  # fmt: skip
    return Records.from_frames(
        patients=pats,
        donors=pd.DataFrame({"donor_id": ["d1", "d2", "d2b", "d3", "d4", "d5"],
                             "patient_id": ["p1", "p2", "p2", "p3", "p4", "p5"],
                             "relation": ["child", "sibling", "unrelated", "child", "child", "child"],
                             "sex": ["F", "M", "F", "F", "M", "M"], "age": [35, 60, 30, 40, 33, 38],
                             "hla_mismatches": [5, 4, 1, 6, 5, 5]}),
        courses=pd.DataFrame({"course_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
                              "patient_id": ["p1", "p1", "p2", "p3", "p4", "p5"], "number": [1, 2, 1, 1, 1, 1],
                              "kind": ["induction", "consolidation", "induction", "induction", "induction", "induction"],
                              "start_date": [day(1), day(60), day(2), day(3), day(4), day(5)]}),
        infusions=pd.DataFrame({"infusion_id": ["i1", "i2", "i3", "i4", "i5"],
                                "patient_id": ["p1", "p2", "p3", "p4", "p5"],
                                "donor_id": ["d1", "d2b", "d3", "d4", "d5"],
                                "date": [day(40), day(35), day(30), day(20), day(22)], "product": "G-PBSC",
                                "cd34_per_kg": [1.1, 2.0, 1.5, 0.9, 1.2]}),
        responses=pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4", "p5"],
                                "date": [day(30), day(25), day(28), day(28), day(20)],
                                "category": ["CR", "CR", "CRi", "no response", "CR"]}),
        gvhd=pd.DataFrame({"patient_id": ["p2", "p2"], "date": [day(60), day(70)], "kind": "acute", "grade": [2, 3]}),
        relapses=pd.DataFrame({"patient_id": ["p1", "p5"], "date": [day(200), day(120)]}),
        deaths=pd.DataFrame({"patient_id": ["p1", "p2", "p4", "p5"], "date": [day(300), day(150), day(90), day(120)]}),
        follow_up=pd.DataFrame({"patient_id": ["p1", "p2", "p3", "p4", "p5"],
                                "last_contact_date": [day(300), day(150), day(400), day(90), day(120)]}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def derived():
    return derive_endpoints(history(), endpoints=("os", "lfs", "cir", "nrm", "efs", "grfs", "agvhd"),
                            today=date(2026, 1, 1))  # fmt: skip


def row(derived, pid):
    return derived.data.set_index("patient_id").loc[pid]


def test_relapse_then_death(derived):
    r = row(derived, "p1")
    assert (r.os_time, r.os_status) == (300, 1)
    assert (r.lfs_time, r.lfs_status) == (170, 1)  # CR d30 -> relapse d200
    assert (r.cir_time, r.cir_status) == (170, 1)
    assert (r.nrm_time, r.nrm_status) == (160, 2)  # from infusion d40: relapse competes on d200
    ex = derived.explain("p1").set_index("endpoint")
    assert ex.loc["cir", "end"] == "relapse" and ex.loc["os", "end"] == "death"


def test_death_in_remission_is_nrm(derived):
    r = row(derived, "p2")
    assert (r.nrm_time, r.nrm_status) == (115, 1)
    assert (r.cir_time, r.cir_status) == (125, 2)
    assert (r.grfs_time, r.grfs_status) == (35, 1)  # grade III aGVHD on d70, infusion d35
    assert (r.agvhd_time, r.agvhd_status) == (25, 1)  # grade II on d60
    assert r.max_agvhd_grade == 3
    # the donor of the infusion (d2b), not the first donor row
    assert (r.donor_relation, r.donor_age, r.hla_mismatches, r.sex_pair) == ("unrelated", 30, 1, "F→F")


def test_lost_to_follow_up_is_censored_at_last_contact(derived):
    r = row(derived, "p3")
    assert (r.os_time, r.os_status, r.lfs_time, r.lfs_status, r.cir_status, r.nrm_status) == (400, 0, 372, 0, 0, 0)
    assert derived.explain("p3").set_index("endpoint").loc["os", "end"] == "censored at follow_up.last_contact_date"


def test_never_in_remission(derived):
    r = row(derived, "p4")
    assert pd.isna(r.lfs_time) and pd.isna(r.lfs_status) and pd.isna(r.cir_time)
    assert derived.explain("p4").set_index("endpoint").loc["lfs", "end"] == "undefined: no first remission"
    assert (r.efs_time, r.efs_status) == (1, 1)  # refractory: ELN event on day 1
    assert (r.os_time, r.os_status, r.cr, r.best_response) == (90, 1, 0, "no response")


def test_relapse_on_the_day_of_death(derived):
    r = row(derived, "p5")
    assert (r.cir_time, r.cir_status) == (100, 1)
    assert (r.nrm_time, r.nrm_status) == (98, 2)


def test_covariates(derived):
    d = derived.data.set_index("patient_id")
    assert list(d["n_courses"]) == [2, 1, 1, 1, 1]
    assert list(d["age_at_diagnosis"]) == [69] * 5
    assert list(d["early_death_28d"]) == [0, 0, 0, 0, 0]
    assert list(d["cr"]) == [1, 1, 1, 0, 1]


def test_chronology_and_references_are_all_reported():
    recs = history()
    bad = dict(recs.tables)
    bad["deaths"] = pd.DataFrame({"patient_id": ["p1", "p9"], "date": [day(-5), day(10)]})
    bad["relapses"] = pd.DataFrame({"patient_id": ["p4"], "date": [day(50)]})
    bad["courses"] = recs["courses"].assign(end_date=[day(0), None, None, None, None, None])
    bad["patients"] = pd.concat([recs["patients"], recs["patients"].iloc[[0]]], ignore_index=True)
    bad["follow_up"] = recs["follow_up"].assign(last_contact_date=[day(50), day(150), day(400), day(90), day(3000)])
    with pytest.raises(ValidationError) as info:
        validate_records(Records(bad), today=date(2026, 1, 1))
    rules = {(p.table, p.rule) for p in info.value.problems}
    assert ("deaths", "death before diagnosis") in rules
    assert ("deaths", "refers to an unknown patient") in rules
    assert ("relapses", "relapse before the first remission (or without any remission)") in rules
    assert ("courses", "course ends before it starts") in rules
    assert ("patients", "duplicate key: an earlier row has the same patient_id") in rules
    assert ("follow_up", "date is in the future") in rules
    assert ("courses", "after the patient's death") in rules  # p1's courses after the (wrong) death on day -5
    assert ("follow_up", "last contact before the patient's latest dated record") in rules
    assert "p9" not in str(info.value) and "p1" not in str(info.value)  # identifiers never echoed


def test_type_errors_are_reported_with_values():
    recs = history()
    bad = dict(recs.tables)
    bad["infusions"] = recs["infusions"].assign(
        cd34_per_kg=["1.1", "lots", -2, 1.5, 1.2], product=["G-PBSC", "PBSC", "G-PBSC", "NK", "MSC"]
    )
    bad["observations"] = pd.DataFrame(
        {
            "patient_id": ["p1"],
            "date": ["2020-02-30"],
            "item": ["anc"],
            "value": [0.5],
            "unit": ["10^9/L"],
            "colour": ["red"],
        }
    )
    with pytest.raises(ValidationError) as info:
        validate_records(Records(bad), today=date(2026, 1, 1))
    text = str(info.value)
    # rows of a data frame are counted from 1 (the first row), as a person counts them
    assert "infusions, row 2, column 'cd34_per_kg' (value 'lots'): not a number" in text
    assert "infusions, row 3, column 'cd34_per_kg' (value -2.0): must be ≥ 0" in text
    assert "infusions, row 2, column 'product' (value 'PBSC'): must be one of" in text
    assert "observations, row 1, column 'date' (value '2020-02-30'): not a date in the format YYYY-MM-DD" in text
    assert "observations, column 'colour': unknown column" in text


def myeloid_records() -> Records:
    """survival::myeloid as dated records: randomisation on a common day 0, CR, transplant, relapse, death."""
    m = dataset("myeloid")
    base = pd.Timestamp("2000-01-01")
    ids = "m" + m["id"].astype(str)
    at_day = lambda col: base + pd.to_timedelta(m[col], unit="D")  # noqa: E731
    cr = m["crtime"].notna()
    tx = m["txtime"].notna()
    rl = m["rltime"].notna()
    return Records.from_frames(
        patients=pd.DataFrame({"patient_id": ids, "sex": m["sex"].str.upper(), "diagnosis": "AML",
                               "diagnosis_date": base, "randomization_date": base, "arm": m["trt"]}),
        infusions=pd.DataFrame({"infusion_id": "t" + ids[tx], "patient_id": ids[tx], "date": at_day("txtime")[tx],
                                "product": "HSCT"}),
        responses=pd.DataFrame({"patient_id": ids[cr], "date": at_day("crtime")[cr], "category": "CR"}),
        relapses=pd.DataFrame({"patient_id": ids[rl], "date": at_day("rltime")[rl],
                               # relapse recorded without a recorded CR: progression
                               "kind": np.where(cr[rl], "hematologic", "progression")}),
        deaths=pd.DataFrame({"patient_id": ids[m["death"] == 1], "date": at_day("futime")[m["death"] == 1]}),
        follow_up=pd.DataFrame({"patient_id": ids, "last_contact_date": at_day("futime")}),
    )  # fmt: skip


def test_myeloid_trial_reproduced_from_records():
    m = dataset("myeloid")
    derived = derive_endpoints(myeloid_records(), endpoints=("os", "pfs", "cir"), today=date(2026, 1, 1))
    d = derived.data
    np.testing.assert_array_equal(d["os_time"].astype(float), m["futime"])
    np.testing.assert_array_equal(d["os_status"].astype(int), m["death"])
    # time to CR and relapse from the records reproduce the published columns
    cr_time = (derived.explanation.query("endpoint == 'cir'")["origin_date"] - pd.Timestamp("2000-01-01")).dt.days
    np.testing.assert_array_equal(cr_time.to_numpy(dtype=float), m["crtime"].to_numpy(dtype=float))
    has_rl = m["rltime"].notna() & m["crtime"].notna()
    cir = d[has_rl.to_numpy()]
    np.testing.assert_array_equal(cir["cir_status"].astype(int), 1)
    np.testing.assert_array_equal(cir["cir_time"].astype(float), (m["rltime"] - m["crtime"])[has_rl])
    # and the derived OS gives R's log-rank by arm
    lr = at.logrank_test(d.assign(os_time=d["os_time"].astype(float), os_status=d["os_status"].astype(int)),
                         "os_time", "os_status", by="arm")  # fmt: skip
    assert lr.statistic == pytest.approx(at.logrank_test(m, "futime", "death", by="trt").statistic, rel=1e-12)


def test_counting_process_equals_tmerge():
    m = dataset("myeloid")
    ref = pd.read_csv(REFERENCE_DIR / "data" / "myeloid_tmerge.csv")
    base = m.rename(columns={"id": "patient_id"})[["patient_id", "trt", "futime", "death"]]
    tx = m[m["txtime"].notna()]
    changes = pd.DataFrame({"patient_id": tx["id"], "day": tx["txtime"], "value": 1.0})
    cp = counting_process(base, "futime", "death", changes, "transplant")
    # tmerge also splits at crtime and rltime (its other covariates): compare after merging those splits away
    ref_tx = (ref.groupby(["id", "transplant"], sort=False)
              .agg(tstart=("tstart", "min"), tstop=("tstop", "max"), death=("death", "max")).reset_index())  # fmt: skip
    assert len(cp) == len(ref_tx)
    np.testing.assert_array_equal(cp["start"], ref_tx["tstart"])
    np.testing.assert_array_equal(cp["stop"], ref_tx["tstop"])
    np.testing.assert_array_equal(cp["death"], ref_tx["death"])
    np.testing.assert_array_equal(cp["transplant"], ref_tx["transplant"])
    fit = at.cox_ph(cp, "stop", "death", formula="trt + transplant", entry="start", tol=1e-12)
    cox_ref = pd.read_csv(REFERENCE_DIR / "data" / "myeloid_tmerge_cox.csv")
    np.testing.assert_allclose(fit.coef, cox_ref["coef"], rtol=1e-6)
    np.testing.assert_allclose(fit.summary["se"], cox_ref["se"], rtol=1e-6)


def test_cumulative_covariate_and_landmark():
    data = pd.DataFrame({"patient_id": ["a", "b"], "t": [100.0, 50.0], "s": [1, 0]})
    courses = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b"], "day": [0, 30, 60, 0, 70], "value": 1.0})
    cp = counting_process(data, "t", "s", courses, "n_courses", cumulative=True)
    assert cp[["patient_id", "start", "stop", "s", "n_courses"]].values.tolist() == [
        ["a", 0.0, 30.0, 0, 1.0], ["a", 30.0, 60.0, 0, 2.0], ["a", 60.0, 100.0, 1, 3.0], ["b", 0.0, 50.0, 0, 1.0],
    ]  # fmt: skip
    lm = landmark(data, "t", "s", at=60)
    assert lm[["patient_id", "t"]].values.tolist() == [["a", 40.0]]


def test_recovery_per_course():
    from allotrack.endpoints.recovery import recovery_per_course

    anc = [3.0, 2.5, 2.1, 1.5, 0.8, 0.2, 0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.5, 0.55, 0.7, 0.9, 1.2]
    plt = [150, 120, 110, 90, 60, 40, 25, 20, 18, 22, 25, 28, 31, 33, 35, 40, 45, 60]
    start = day(1)  # p1's first course starts on day 1
    labs = pd.DataFrame({
        "patient_id": "p1", "date": [start + timedelta(days=k) for k in range(18)] * 2,
        "analyte": ["ANC"] * 18 + ["PLT"] * 18, "value": anc + plt, "unit": "10^9/L",
    })  # fmt: skip
    recs = validate_records(Records.from_frames(**history().tables, labs=labs), today=date(2026, 1, 1))
    out = recovery_per_course(recs).set_index("course_id")
    assert (out.loc["c1", "status"], out.loc["c1", "start_day"], out.loc["c1", "end_day"]) == ("recovered", 3.0, 14.0)
    assert out.loc["c3", "status"] == "no counts"
    anc_only = recovery_per_course(recs, rule="neutrophil").set_index("course_id")
    assert anc_only.loc["c1", "end_day"] == 13.0  # ANC >= 0.5 from day 13 after the nadir


def test_a_response_assessed_before_the_first_course_is_not_a_response_to_treatment():
    """Myeloma MST: the response before MST is the disease's state at entry (MM-001: PR before, SD after); the
    best response counts assessments from the first course on, so 17 of 20 responded (≥ PR), as published (18
    counted the entry state). A complete remission before the first course does not start LFS either."""
    from allotrack.records.validate import validate_records
    from allotrack.study.five_studies import five_study_records

    recs = validate_records(five_study_records()["myeloma_mst"])
    d = derive_endpoints(recs, endpoints=["os"], validate=False).data.set_index("patient_id")
    assert d.loc["MM-001", "best_response"] == "SD"
    assert d["best_response"].isin(["sCR", "CR", "VGPR", "PR"]).sum() == 17
    history = Records.from_frames(
        patients=pd.DataFrame({"patient_id": ["q1"], "sex": "F", "diagnosis": "AML", "diagnosis_date": "2020-01-01"}),
        courses=pd.DataFrame({"course_id": ["c1"], "patient_id": ["q1"], "number": [1], "kind": ["induction"],
                              "start_date": ["2020-03-01"]}),
        assessments=pd.DataFrame({"patient_id": ["q1", "q1"], "item": "disease_response",
                                  "date": ["2020-02-01", "2020-04-01"], "value_text": ["CR", "PR"]}),
        follow_up=pd.DataFrame({"patient_id": ["q1"], "last_contact_date": ["2021-01-01"]}),
    )  # fmt: skip
    q = derive_endpoints(history, endpoints=["lfs"], today=date(2026, 1, 1)).data.iloc[0]
    assert q["best_response"] == "PR" and q["cr"] == 0 and pd.isna(q["lfs_time"])
