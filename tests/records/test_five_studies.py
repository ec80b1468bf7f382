"""The five published studies (shared/reference/studies.md) as synthetic records: each study's records reproduce the
published counts, and all five import into one store (SQLite and PostgreSQL) and come back unchanged."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_store_import import _drop_everything, _fresh_postgres_store

import allotrack as at
from allotrack.clinical.gvhd import magic_grade
from allotrack.records.dates import DAYS_PER_MONTH, DAYS_PER_YEAR
from allotrack.records.schema import TABLES, Records
from allotrack.records.store import Store
from allotrack.records.validate import validate_records
from allotrack.study.five_studies import CENTRES, PREFIXES, STUDIES, all_records, five_study_records

SEEDS = (0, 7)  # the published counts hold for every seed


@cache
def _studies(seed: int = 0) -> dict[str, Records]:
    return five_study_records(seed)


def _study(code: str, seed: int) -> Records:
    return _studies(seed)[code]


def _dates(frame: pd.DataFrame, column: str = "date") -> pd.Series:
    return pd.to_datetime(frame[column])


def _per_patient(frame: pd.DataFrame, column: str = "date", how: str = "min") -> pd.Series:
    return pd.to_datetime(frame[column]).groupby(frame["patient_id"]).agg(how)


def _item(records: Records, table: str, item: str) -> pd.DataFrame:
    frame = records[table]
    return frame[frame["item" if table != "interventions" else "agent"] == item]


def _survival(ids: pd.Index, origin: pd.Series, event: pd.Series, last: pd.Series) -> pd.DataFrame:
    """(time in days from ``origin``, status) per patient: the event date, else the last contact."""
    end = event.reindex(ids)
    return pd.DataFrame({"time": (end.fillna(last.reindex(ids)) - origin.reindex(ids)).dt.days.astype(float),
                         "event": end.notna().astype(int)}, index=ids)  # fmt: skip


def _km_at(data: pd.DataFrame, days: float) -> float:
    return float(at.kaplan_meier(data, "time", "event").at([days])["survival"].iloc[0])


def _pct(value: float, digits: int = 1) -> float:
    return round(100 * value, digits)


# --- the records as a whole ------------------------------------------------------------------------------------


def test_five_studies_deterministic_with_unique_prefixed_ids_and_centres():
    a, b = five_study_records(0), _studies(0)
    assert list(a) == list(STUDIES) == ["older_aml", "myeloma_mst", "imak", "msc_rct", "nk_cells"]
    for code in STUDIES:
        for name in TABLES:
            pd.testing.assert_frame_equal(a[code][name], b[code][name])
        records = a[code]
        for name, frame in records.tables.items():
            for column in ("patient_id", "donor_id", "course_id", "infusion_id"):
                if column in frame.columns:
                    assert frame[column].dropna().str.startswith(PREFIXES[code]).all(), (code, name, column)
        patients = records["patients"]
        assert patients["patient_id"].is_unique and set(patients["centre"]) == set(CENTRES[code])
        assert not set(records.tables) & {"labs", "chimerism", "gvhd", "crs", "responses"}
    merged = all_records()
    assert merged["patients"]["patient_id"].is_unique and len(merged["patients"]) == 29 + 20 + 33 + 130 + 185
    for name in ("donors", "courses", "infusions"):
        assert merged[name][TABLES[name].key].is_unique


# --- 1. older AML ----------------------------------------------------------------------------------------------


def test_older_aml_counts():
    r = _study("older_aml", 0)
    p = r["patients"].set_index("patient_id")
    group = pd.Series(np.where(p["age_at_diagnosis"] <= 70, "60–70", "> 70"), index=p.index)
    donors = r["donors"].set_index("patient_id")
    diagnosis = pd.to_datetime(p["diagnosis_date"])
    death = _per_patient(r["deaths"])
    cause = r["deaths"].set_index("patient_id")["cause"]
    relapse = _per_patient(r["relapses"])
    cr = set(_item(r, "assessments", "response_eln").query("value_text == 'CR'")["patient_id"])
    first_course = _per_patient(r["courses"], "start_date")
    n_courses = r["courses"].groupby("patient_id").size()

    def by_group(flags: pd.Series) -> tuple[int, int]:
        flags = flags.reindex(p.index).fillna(False).astype(bool)
        return int(flags[group == "60–70"].sum()), int(flags[group == "> 70"].sum())

    def alive_at(years: float) -> pd.Series:
        died = (death - diagnosis.reindex(death.index)).dt.days <= years * DAYS_PER_YEAR
        return ~died.reindex(p.index, fill_value=False)

    def leukaemia_free_at(years: float) -> pd.Series:
        ended = pd.concat([death, relapse], axis=1).min(axis=1).reindex(p.index)
        free = ~((ended - diagnosis).dt.days <= years * DAYS_PER_YEAR)
        return free & p.index.isin(cr)

    assert by_group(pd.Series(True, index=p.index)) == (20, 9)
    assert by_group(p["sex"] == "M") == (9, 2)
    assert by_group(donors["sex"] == "M") == (11, 4)
    pairs = donors["sex"] + "→" + p["sex"]
    assert [by_group(pairs == pair) for pair in ("F→F", "F→M", "M→F", "M→M")] == [(5, 5), (4, 0), (6, 2), (5, 2)]
    assert by_group(donors["relation"] == "unrelated") == (5, 0)
    assert by_group(donors["hla_mismatches"] == 5) == (14, 8)
    assert by_group(n_courses > 3) == (18, 2)
    for g, mean, sd in (("60–70", 35.75, 4.52), ("> 70", 43.78, 5.85)):
        ages = donors["age"][group == g].astype(float)
        assert (round(ages.mean(), 2), round(ages.std(ddof=1), 2)) == (mean, sd)
    assert by_group(pd.Series(p.index.isin(cr), index=p.index)) == (18, 6)
    assert by_group(pd.Series(p.index.isin(death.index), index=p.index)) == (12, 9)
    assert by_group((death - first_course.reindex(death.index)).dt.days <= 28) == (1, 3)
    assert [by_group(alive_at(y)) for y in (1, 3, 5)] == [(16, 3), (13, 0), (9, 0)]
    assert [by_group(leukaemia_free_at(y)) for y in (1, 3, 5)] == [(16, 1), (10, 0), (9, 0)]
    assert [by_group(cause == c) for c in ("relapse", "infection", "organ failure")] == [(6, 5), (2, 2), (4, 2)]
    last = _per_patient(r["follow_up"], "last_contact_date")
    os_data = _survival(p.index, diagnosis, death, last)
    os_data["time"] /= DAYS_PER_MONTH
    median = at.kaplan_meier(os_data, "time", "event").median()["median"].iloc[0]
    reverse = at.kaplan_meier(os_data.assign(event=1 - os_data["event"]), "time", "event").median()["median"].iloc[0]
    assert (round(float(median), 1), round(float(reverse), 1)) == (20.0, 148.5)
    obs = r["observations"]
    assert {"anc", "plt", "chimerism_pct"} <= set(obs["item"])


# --- 2. myeloma MST --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_myeloma_mst_counts(seed):
    r = _study("myeloma_mst", seed)
    ids = pd.Index(r["patients"]["patient_id"])
    assert len(ids) == 20 and set(r["patients"]["diagnosis"]) == {"MM"}
    first = _per_patient(r["courses"], "start_date")
    years = pd.DatetimeIndex(first).year
    assert years.min() >= 2008 and years.max() == 2024
    best = _item(r, "assessments", "response_imwg").query("visit == 'best response'").set_index("patient_id")
    assert len(best) == 20 and int(best["value_text"].isin(["sCR", "CR", "VGPR", "PR"]).sum()) == 17
    death, progression = _per_patient(r["deaths"]), _per_patient(r["relapses"])
    last = _per_patient(r["follow_up"], "last_contact_date")
    six_years = 6 * DAYS_PER_YEAR
    os_6y = _km_at(_survival(ids, first, death, last), six_years)
    pfs_6y = _km_at(_survival(ids, first, pd.concat([death, progression], axis=1).min(axis=1), last), six_years)
    assert (_pct(os_6y), _pct(pfs_6y)) == (64.7, 35.3)
    assert set(_item(r, "assessments", "agvhd_grade")["value_text"]) == {"0"}  # no GVHD
    assert (progression.reindex(death.index) < death).all()  # no non-relapse mortality
    assert set(r["deaths"]["cause"]) == {"progression"}
    crs = _item(r, "assessments", "crs_grade")
    assert len(r["courses"]) == len(crs) == 49 and set(crs["value_text"]) == {"0", "1"}
    assert _pct((crs["value_text"] == "1").mean()) == 40.8  # fever and grade I CRS in 40.8 % of courses
    fever, crs_1 = r["adverse_events"].query("term == 'Fever'"), crs.query("value_text == '1'")
    assert sorted(zip(fever["patient_id"], fever["start_date"], strict=True)) == sorted(
        zip(crs_1["patient_id"], crs_1["date"], strict=True))  # fmt: skip
    chimerism = _item(r, "observations", "chimerism_pct")
    day = (_dates(chimerism) - _per_patient(r["infusions"]).reindex(chimerism["patient_id"]).to_numpy()).dt.days
    window = chimerism[(day >= 14) & (day <= 183)]
    assert len(window) >= 20 and (window["value"] > 0).all() and not window["below_lod"].fillna(False).any()
    for item in ("cd3_pct", "cd4_pct", "cd4_cd8_ratio", "th0_pct"):
        rows = _item(r, "observations", item)
        before = set(rows.query("visit == 'before MST'")["patient_id"])
        after = set(rows.query("visit == 'after MST'")["patient_id"])
        assert before == after and len(before) == 14, item
    items = set(r["observations"]["item"])
    assert {"mprot_serum", "flc_kappa", "flc_lambda", "b2m", "albumin", "calcium"} <= items
    assert {"iss_stage", "msmart_risk", "ds_stage"} <= set(r["attributes"]["item"])
    before = _item(r, "assessments", "response_imwg").query("visit == 'before MST'")
    assert len(before) == 20 and int(before["value_text"].isin(["VGPR", "CR", "sCR"]).sum()) == 7


# --- 3. IMAK ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_imak_counts(seed):
    r = _study("imak", seed)
    p = r["patients"].set_index("patient_id")
    assert len(p) == 33 and set(p["diagnosis"]) == {"AML", "ALL", "MM", "NHL"}
    assert set(r["infusions"]["product"]) == {"IMAK"} and set(r["infusions"]["patient_id"]) == set(p.index)
    assert r["courses"]["regimen"].str.startswith("cyclophosphamide").all()
    assert set(r["donors"]["relation"]) <= {"child", "sibling", "parent", "unrelated"}
    response = r["assessments"].query("visit == 'day +30'")
    assert set(response["item"]) == {"response_eln", "response_imwg", "disease_response"} and len(response) == 33
    cr = set(response.query("value_text in ['CR', 'sCR']")["patient_id"])
    assert len(cr) == 23
    grades = r["adverse_events"]["grade"]
    assert len(grades) > 33 and grades.max() == 3 and set(grades) <= {1, 2, 3}  # none above grade 3
    assert set(_item(r, "assessments", "agvhd_grade")["value_text"]) == {"0"}  # no GVHD
    cd20 = _item(r, "attributes", "cd20_status").set_index("patient_id")["value_text"]
    assert set(_item(r, "interventions", "rituximab")["patient_id"]) == set(cd20[cd20 == "positive"].index)
    assert (cd20 == "positive").sum() > 0
    for item in ("prior_auto_hct", "prior_allo_hct"):
        assert set(_item(r, "attributes", item)["patient_id"]) == set(p.index)
    infusion = _per_patient(r["infusions"])
    last = _per_patient(r["follow_up"], "last_contact_date")
    ended = set(r["relapses"]["patient_id"]) | set(r["deaths"]["patient_id"])
    in_remission = [pid for pid in cr if pid not in ended]
    years = ((last[in_remission] - infusion[in_remission]).dt.days - 30) / DAYS_PER_YEAR
    assert int((years > 5).sum()) == 6  # long-term remission > 5 years
    chimerism = _item(r, "observations", "chimerism_pct")
    donor_sex = r["donors"].set_index("patient_id")["sex"]
    female_of_male = set(p.index[(p["sex"] == "F") & (donor_sex.reindex(p.index) == "M")])
    assert set(chimerism["patient_id"]) == female_of_male and len(female_of_male) == 6
    day = (_dates(chimerism) - infusion.reindex(chimerism["patient_id"]).to_numpy()).dt.days
    detected = chimerism["value"].notna() & ~chimerism["below_lod"].fillna(False).astype(bool)
    assert (day[detected] <= 6).all() and (~detected[day > 6]).all() and detected.any()


# --- 4. MSC + basiliximab RCT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_msc_rct_counts(seed):
    r = _study("msc_rct", seed)
    enrolled = r["enrolments"].set_index("patient_id")
    arm = enrolled["arm"]
    assert len(enrolled) == 130 and arm.value_counts().to_dict() == {"MSC + basiliximab": 65, "basiliximab": 65}
    assert sorted(enrolled["allocation_number"]) == list(range(1, 131))
    assert set(enrolled["stratum"]) == {"grade II", "grade III-IV"}
    assert (r["patients"].set_index("patient_id")["arm"] == arm.reindex(r["patients"]["patient_id"]).to_numpy()).all()
    assert len(set(r["patients"]["centre"])) == 5

    def by_arm(patients: set[str] | pd.Index) -> tuple[int, int]:
        chosen = arm[arm.index.isin(list(patients))]
        return int((chosen == "MSC + basiliximab").sum()), int((chosen == "basiliximab").sum())

    donors = r["donors"]
    haplo = donors[(donors["relation"] != "unrelated") & (donors["hla_mismatches"] >= 3)]
    assert len(haplo) == 125 and _pct(125 / 130) == 96.2
    week4 = _item(r, "assessments", "gvhd_response").query("visit == 'week 4'")
    complete = by_arm(set(week4.query("value_text == 'CR'")["patient_id"]))
    assert complete == (54, 36) and (_pct(54 / 65), _pct(36 / 65)) == (83.1, 55.4)
    overall = by_arm(set(week4.query("value_text in ['CR', 'PR']")["patient_id"]))
    assert abs(overall[0] - overall[1]) <= 6  # comparable overall response
    doses = _item(r, "interventions", "basiliximab").groupby("patient_id").size()
    many = by_arm(doses[doses >= 6].index)
    assert many == (3, 13) and (_pct(3 / 65), _pct(13 / 65)) == (4.6, 20.0)
    assert by_arm(set(_item(r, "interventions", "msc_infusion")["patient_id"])) == (65, 0)
    factors = ("ho1", "gal1", "gal9", "tnfaip6", "pge2", "pdl1", "tgfb1", "hgf")
    cytokines = r["observations"][r["observations"]["item"].isin(factors)]
    per_patient = cytokines.groupby("patient_id").apply(lambda f: set(zip(f["item"], f["visit"], strict=True)),
                                                        include_groups=False)  # fmt: skip
    full = {(f, v) for f in factors for v in ("day 0", "day 1", "day 7")}
    assert len(per_patient) == 19 and all(s == full for s in per_patient) and by_arm(per_patient.index) == (19, 0)
    organs = _item(r, "assessments", "cgvhd_organ_count").set_index("patient_id")["value"]
    three = by_arm(organs[organs >= 3].index)
    with_cgvhd = by_arm(organs.index)
    assert (_pct(three[0] / with_cgvhd[0]), _pct(three[1] / with_cgvhd[1])) == (14.3, 43.6)
    severity = _item(r, "assessments", "cgvhd_severity")
    assert set(severity.query("value_text != 'none'")["patient_id"]) == set(organs.index)
    # 52-week disease-free survival in malignant disease, from randomisation
    p = r["patients"].set_index("patient_id")
    malignant = p.index[p["diagnosis"] != "SAA"]
    assert by_arm(malignant) == (60, 60)
    event = pd.concat([_per_patient(r["deaths"]), _per_patient(r["relapses"])], axis=1).min(axis=1)
    dfs = _survival(malignant, pd.to_datetime(p["randomization_date"]), event,
                    _per_patient(r["follow_up"], "last_contact_date"))  # fmt: skip
    estimates = tuple(_pct(_km_at(dfs[arm.reindex(dfs.index) == a], 364)) for a in ("MSC + basiliximab", "basiliximab"))
    assert estimates == (84.8, 65.9)
    populations = r["populations"].groupby("population")["included"].sum().to_dict()
    assert populations == {"ITT": 130, "per-protocol": 125, "safety": 130}
    # organ stages and the MAGIC grade agree; a week-4 complete response has no GVHD left
    stages = r["assessments"][r["assessments"]["item"].str.match(r"agvhd_\w+_stage")]
    table = stages.pivot_table(index=["patient_id", "visit"], columns="item", values="value_text", aggfunc="first")
    grade = _item(r, "assessments", "agvhd_grade").set_index(["patient_id", "visit"])["value_text"]
    magic = table.apply(lambda s: str(magic_grade(skin=int(s["agvhd_skin_stage"]), liver=int(s["agvhd_liver_stage"]),
                                                  upper_gi=int(s["agvhd_ugi_stage"]),
                                                  lower_gi=int(s["agvhd_lgi_stage"])).grade), axis=1)  # fmt: skip
    assert (magic == grade.reindex(magic.index)).all() and len(magic) == 260
    assert set(grade.xs("randomisation", level="visit")) <= {"2", "3", "4"}
    cr_patients = week4.query("value_text == 'CR'")["patient_id"]
    assert (grade.xs("week 4", level="visit").reindex(cr_patients) == "0").all()


# --- 5. NK cells -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_nk_cells_counts(seed):
    r = _study("nk_cells", seed)
    sets = r["matched_sets"].set_index("patient_id")
    cases, controls = sets.index[sets["role"] == "case"], sets.index[sets["role"] == "control"]
    assert (len(cases), len(controls)) == (25, 160)
    assert sorted(sets.groupby("set_id")["role"].apply(lambda s: int((s == "control").sum())).unique()) == [6, 7]
    assert (sets.groupby("set_id")["role"].apply(lambda s: int((s == "case").sum())) == 1).all()
    p = r["patients"].set_index("patient_id")
    assert set(p.loc[controls, "centre"]) == {"CIBMTR"} and set(p.loc[cases, "diagnosis"]) <= {"AML", "MDS", "CML"}
    nk = _item(r, "interventions", "nk_infusion")
    hsct = _per_patient(r["infusions"])
    days = (_dates(nk, "start_date") - hsct.reindex(nk["patient_id"]).to_numpy()).dt.days
    assert set(nk["patient_id"]) == set(cases) and sorted(set(days)) == [-2, 7, 28] and len(nk) == 75
    assert nk.groupby("dose_level")["dose"].agg(set).to_dict() == {"DL1": {0.1}, "DL2": {1.0}, "DL3": {10.0},
                                                                   "DL4": {100.0}}  # fmt: skip
    # 2-year relapse (cumulative incidence, death competing) and disease-free survival
    relapse, death = _per_patient(r["relapses"]), _per_patient(r["deaths"])
    last = _per_patient(r["follow_up"], "last_contact_date")
    first = pd.concat([relapse, death], axis=1).min(axis=1)
    dfs = _survival(p.index, hsct, first, last)
    dfs["cause"] = np.where(dfs["event"] == 0, 0, np.where(relapse.reindex(dfs.index) == first.reindex(dfs.index),
                                                           1, 2))  # fmt: skip

    def two_year(ids: pd.Index) -> tuple[float, float]:
        data = dfs.loc[ids]
        estimates = at.cumulative_incidence(data, "time", "cause").at([730]).query("cause == 1")["estimate"]
        cif = estimates.iloc[0] if (data["cause"] == 1).any() else 0.0  # no relapse at all: no cause-1 curve
        return _pct(float(cif), 0), _pct(_km_at(data, 730), 0)

    assert two_year(cases) == (4.0, 66.0) and two_year(controls) == (38.0, 44.0)
    mfi = _item(r, "observations", "dsa_mfi").groupby("patient_id")["value"].max()
    assert set(mfi.index) == set(cases)
    no_dsa = mfi.index[mfi < 1000]
    their_controls = sets.index[(sets["role"] == "control") & sets["set_id"].isin(sets.loc[no_dsa, "set_id"])]
    assert (len(no_dsa), len(their_controls)) == (18, 115)
    assert two_year(no_dsa) == (0.0, 72.0) and two_year(their_controls) == (40.0, 44.0)
    subgroup = dfs.loc[no_dsa.append(their_controls)].assign(control=lambda d: d.index.isin(their_controls).astype(int))
    hr = at.cox_ph(subgroup, "time", "event", covariates=["control"]).summary.loc["control", "hr"]
    assert round(float(hr), 2) == 2.64
    # NK-cell counts at day +30 rise with the dose level
    counts = _item(r, "observations", "nk_abs").query("visit == 'day +30'").set_index("patient_id")["value"]
    level = nk.drop_duplicates("patient_id").set_index("patient_id")["dose_level"]
    medians = counts.groupby(level.reindex(counts.index)).median()
    assert list(medians.index) == ["DL1", "DL2", "DL3", "DL4"] and medians.is_monotonic_increasing
    assert set(_item(r, "observations", "cd3_abs")["patient_id"]) == set(counts.index)


# --- one store -------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def five_store(request, tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'five.db'}") if request.param == "sqlite" else _fresh_postgres_store()
    s.init()
    yield s
    if request.param == "postgresql":
        _drop_everything(s)
    s.engine.dispose()


def _sorted(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The table's columns in schema order, rows sorted by the natural key (then the other columns); dates as
    datetime64[ns] (pandas 3 picks a date column's resolution from its values: an all-empty column read from a store
    is ns, the same column typed by validation s — the values are the same)."""
    spec = TABLES[table]
    key = list(spec.natural_key)
    out = frame[[c.name for c in spec.columns]].copy()
    for c in spec.columns:
        if c.kind == "date":
            out[c.name] = out[c.name].astype("datetime64[ns]")
    return out.sort_values(key + [c.name for c in spec.columns if c.name not in key], kind="stable").reset_index(
        drop=True)  # fmt: skip


def test_all_five_studies_import_into_one_store_and_come_back_unchanged(five_store):
    records = all_records()
    expected = validate_records(records, dictionary=five_store.dictionary())  # typed and converted as on import
    counts = {name: len(frame) for name, frame in expected.tables.items() if len(frame)}
    assert set(counts) == set(TABLES)  # every record table is used
    report = five_store.import_records(records, user="five-studies")
    assert report.added == counts and report.already_present == {} and report.patients == 397
    back = five_store.load()
    for name in TABLES:
        pd.testing.assert_frame_equal(_sorted(back[name], name), _sorted(expected[name], name), check_exact=True,
                                      obj=name)  # fmt: skip
    patients = back["patients"]
    for code in STUDIES:  # each study's patients, with their centres
        mine = patients[patients["patient_id"].str.startswith(PREFIXES[code])]
        assert len(mine) == len(_studies(0)[code]["patients"]) and set(mine["centre"]) == set(CENTRES[code])
    again = five_store.import_records(records)
    assert again.added == {} and again.updated == {} and again.already_present == counts
