"""Turn validated records into one analysis row per patient: ``<endpoint>_time`` (days) and
``<endpoint>_status`` for every endpoint, plus covariates, with an explanation of which record set each date.

Censoring is at the last contact (``follow_up.last_contact_date``; without it, the patient's latest dated
record, and the explanation says so). An endpoint whose origin never happened (LFS for a patient never in
remission) is undefined for that patient: time and status are missing and the explanation says why — such
patients are excluded from that analysis, never counted as censored at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from allotrack.endpoints.definitions import ENDPOINTS, Endpoint
from allotrack.records import views
from allotrack.records.dates import completed_years
from allotrack.records.schema import EVENT_DATES, REMISSIONS, Records
from allotrack.records.validate import validate_records

RESPONSE_ORDER = ("sCR", "CR", "CRh", "CRi", "VGPR", "MLFS", "PR", "MR", "SD", "no response", "PD", "non-evaluable")


@dataclass(frozen=True)
class DerivedEndpoints:
    """``data``: one row per patient (analysis dataset); ``explanation``: one row per patient and endpoint with
    the origin and end dates and the records that set them."""

    data: pd.DataFrame
    explanation: pd.DataFrame
    endpoints: tuple[Endpoint, ...]

    def explain(self, patient_id: str) -> pd.DataFrame:
        return self.explanation[self.explanation["patient_id"] == patient_id].reset_index(drop=True)


def _first(frame: pd.DataFrame, column: str, mask: pd.Series | None = None) -> pd.Series:
    sub = frame if mask is None else frame[mask]
    return sub.groupby("patient_id")[column].min()


def _event_dates(t: Records, ids: pd.Index) -> dict[str, pd.Series]:
    """Per patient: the first date of every event kind and every origin (NaT when absent)."""
    g, resp = views.gvhd(t), _responses_on_treatment(t)
    out = {
        "diagnosis": t["patients"].set_index("patient_id")["diagnosis_date"],
        "randomization": t["patients"].set_index("patient_id")["randomization_date"].fillna(
            _first(t["enrolments"], "randomisation_date")),  # the patient record's, else the enrolment's
        "enrolment": _first(t["enrolments"], "enrolment_date"),
        "first_course": _first(t["courses"], "start_date"),
        "first_infusion": _first(t["infusions"], "date"),
        "hsct": _first(t["infusions"], "date", t["infusions"]["product"] == "HSCT"),
        "first_remission": _first(resp, "date", resp["category"].isin(REMISSIONS)),
        "death": t["deaths"].set_index("patient_id")["date"],
        "relapse": _first(t["relapses"], "date"),
        "agvhd_2_4": _first(g, "date", (g["kind"] == "acute") & (g["grade"] >= 2)),
        "agvhd_3_4": _first(g, "date", (g["kind"] == "acute") & (g["grade"] >= 3)),
        "cgvhd_systemic": _first(g, "date", (g["kind"] == "chronic") & (g["systemic_therapy"].fillna(False))),
        "cgvhd": _first(g, "date", (g["kind"] == "chronic") & g["severity"].isin(("mild", "moderate", "severe"))),
    }
    out = {k: v.reindex(ids).astype("datetime64[ns]") for k, v in out.items()}
    # same-day relapse and death: relapse first (death_without_relapse only if no relapse on or before death)
    out["death_without_relapse"] = out["death"].where(out["relapse"].isna() | (out["relapse"] > out["death"]))
    return out


def _responses_on_treatment(t: Records) -> pd.DataFrame:
    """Response assessments from the patient's first recorded course on: a response assessed before it (myeloma's
    "response before MST") is the disease's state at entry, not a response to the treatment studied. A patient
    without a recorded course (e.g. induction not recorded, a transplant as consolidation) keeps every assessment."""
    resp = views.responses(t)
    if t["courses"].empty or resp.empty:
        return resp
    began = pd.to_datetime(resp["patient_id"].map(_first(t["courses"], "start_date")))
    return resp[began.isna().to_numpy() | (resp["date"] >= began).to_numpy()]


def _named_origin(t: Records, ids: pd.Index, origin: str) -> pd.Series:
    """Each patient's first infusion of a named product (``first_infusion:NK``) or first intervention of a named
    agent (``first_intervention:basiliximab``)."""
    kind, name = origin.split(":", 1)
    if kind == "first_infusion":
        rows = t["infusions"][t["infusions"]["product"] == name.strip()]
        return _first(rows, "date").reindex(ids).astype("datetime64[ns]")
    rows = t["interventions"][t["interventions"]["agent"] == name.strip()]
    return _first(rows, "start_date").reindex(ids).astype("datetime64[ns]")


def _last_contact(t: Records, ids: pd.Index) -> tuple[pd.Series, pd.Series]:
    fu = t["follow_up"].set_index("patient_id")["last_contact_date"].reindex(ids)
    dated = [*EVENT_DATES, ("deaths", "date")]
    stacked = pd.concat([t[name][["patient_id", col]].rename(columns={col: "d"}) for name, col in dated])
    latest = stacked.groupby("patient_id")["d"].max().reindex(ids)
    source = pd.Series(np.where(fu.notna(), "follow_up.last_contact_date", "latest dated record"), index=ids)
    return fu.fillna(latest).astype("datetime64[ns]"), source


def _endpoint(ep: Endpoint, dates: dict[str, pd.Series], last: pd.Series, last_src: pd.Series,
              ids: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    origin = dates[ep.origin]
    kinds = list(ep.events) + list(ep.competing)
    cands = {}
    for kind in kinds:
        if kind == "refractory":
            assert ep.landmark_days is not None
            landmark = origin + pd.Timedelta(days=ep.landmark_days)
            rem = dates["first_remission"]
            no_rem = rem.isna() | (rem > landmark)
            reached = (last >= landmark) | dates["death"].notna()
            cands[kind] = (origin + pd.Timedelta(days=1)).where(no_rem & reached)
        else:
            d = dates[kind]
            cands[kind] = d.where(d >= origin)
    frame = pd.DataFrame(cands, index=ids)
    has_event = frame.notna().any(axis=1)
    first_kind = pd.Series(None, index=ids, dtype=object)
    if has_event.any():  # the first column holding the earliest date: event kinds before competing ones
        first_kind[has_event] = frame[has_event].idxmin(axis=1)
    end = frame.min(axis=1)
    status = pd.Series(0, index=ids, dtype="Int64")
    code = {k: (1 if k in ep.events else 2) for k in kinds}
    status[has_event] = first_kind[has_event].map(code).astype("Int64")
    end = end.where(has_event, last)
    source = first_kind.where(has_event, "censored at " + last_src)
    if ep.horizon_days is not None:  # administrative censoring: nothing counts after origin + horizon
        horizon = origin + pd.to_timedelta(ep.horizon_days, unit="D")
        beyond = end > horizon
        status = status.mask(beyond, 0)
        source = source.mask(beyond, f"censored at the {ep.horizon_days:g}-day horizon")
        end = end.where(~beyond, horizon)
    defined = origin.notna() & end.notna()
    time = (end - origin).dt.days.astype("Float64")
    neg = defined & (time < 0)  # last contact before the origin cannot happen in validated records
    time = time.mask(~defined | neg)
    status = status.mask(~defined | neg)
    data = pd.DataFrame({f"{ep.name}_time": time, f"{ep.name}_status": status}, index=ids)
    expl = pd.DataFrame({
        "endpoint": ep.name, "origin": ep.origin, "origin_date": origin, "end_date": end.where(defined),
        "end": np.where(defined, source.astype(str), f"undefined: no {ep.origin.replace('_', ' ')}"),
        "time": time, "status": status,
    }, index=ids)  # fmt: skip
    return data, expl


def _covariates(t: Records, ids: pd.Index, dates: dict[str, pd.Series], early_death_days: int) -> pd.DataFrame:
    p = t["patients"].set_index("patient_id").reindex(ids)
    age = p["age_at_diagnosis"].astype("Float64")
    age = age.fillna(completed_years(p["birth_date"], p["diagnosis_date"]))
    courses = t["courses"].groupby("patient_id").size().reindex(ids, fill_value=0)
    infusions = t["infusions"].sort_values("date")
    first_inf = infusions.drop_duplicates("patient_id").set_index("patient_id").reindex(ids)
    donors = t["donors"]
    # the donor of the first infusion; without one, the patient's first listed donor
    donor = donors.set_index("donor_id").reindex(first_inf["donor_id"].to_numpy())
    donor.index = ids
    fallback = donors.drop_duplicates("patient_id").set_index("patient_id", drop=False).reindex(ids)[donor.columns]
    no_link = first_inf["donor_id"].isna().to_numpy()
    donor.loc[no_link] = fallback.loc[no_link]
    at_date = dates["first_infusion"].fillna(p["diagnosis_date"])
    donor_age = donor["age"].astype("Float64").fillna(completed_years(donor["birth_date"], at_date))
    resp = _responses_on_treatment(t)
    rank = resp["category"].map({c: i for i, c in enumerate(RESPONSE_ORDER)})
    best = resp.assign(rank=rank).sort_values("rank").drop_duplicates("patient_id").set_index("patient_id")["category"]
    g = views.gvhd(t)
    acute = g[g["kind"] == "acute"]
    max_agvhd = pd.to_numeric(acute["grade"]).groupby(acute["patient_id"]).max().reindex(ids).fillna(0)
    death_after_start = (dates["death"] - dates["first_course"]).dt.days
    early = (death_after_start <= early_death_days).astype("Int64")
    early = early.mask(dates["first_course"].isna())
    return pd.DataFrame({
        "sex": p["sex"], "centre": p["centre"], "arm": p["arm"], "age_at_diagnosis": age,
        "eln2022_risk": p["eln2022_risk"], "n_courses": courses.astype(int),
        "n_infusions": t["infusions"].groupby("patient_id").size().reindex(ids, fill_value=0).astype(int),
        "donor_relation": donor["relation"], "donor_sex": donor["sex"], "donor_age": donor_age,
        "sex_pair": (donor["sex"].fillna("?") + "→" + p["sex"].fillna("?")).where(donor["sex"].notna()),
        "hla_mismatches": donor["hla_mismatches"], "cd34_per_kg_first": first_inf["cd34_per_kg"],
        "best_response": best.reindex(ids), "cr": dates["first_remission"].notna().astype(int),
        "max_agvhd_grade": max_agvhd.astype(int), f"early_death_{early_death_days}d": early,
    }, index=ids)  # fmt: skip


def derive_endpoints(
    records: Records,
    endpoints: Sequence[str | Endpoint] = ("os", "lfs", "cir", "nrm", "grfs", "efs"),
    early_death_days: int = 28,
    validate: bool = True,
    today: date | None = None,
) -> DerivedEndpoints:
    """Derive the analysis dataset (one row per patient, times in days) and its explanation."""
    eps = tuple(ENDPOINTS[e] if isinstance(e, str) else e for e in endpoints)
    t = validate_records(records, today) if validate else records
    ids = pd.Index(t["patients"]["patient_id"], name="patient_id")
    dates = _event_dates(t, ids)
    for ep in eps:
        if ep.origin not in dates:
            dates[ep.origin] = _named_origin(t, ids, ep.origin)
    last, last_src = _last_contact(t, ids)
    parts, expls = [_covariates(t, ids, dates, early_death_days)], []
    for ep in eps:
        data, expl = _endpoint(ep, dates, last, last_src, ids)
        parts.append(data)
        expls.append(expl)
    data = pd.concat(parts, axis=1).reset_index()
    explanation = pd.concat(expls).reset_index()
    return DerivedEndpoints(data, explanation, eps)
