"""The analysis dataset of a study plan: derived endpoints and covariates (:mod:`allotrack.endpoints`), the
plan's grouping variables, and per-patient landmark statuses ("alive at 1 year", "leukaemia-free at 3 years").

Landmark status at *t*: yes when the patient is known event-free at *t*, no when the event came first, missing
(an "Unknown" row in the baseline table) when follow-up ended before *t* without the event. "Leukaemia-free"
counts from diagnosis: in remission, alive and without relapse at *t* (a patient never in remission is not
leukaemia-free).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from allotrack.endpoints import derive_endpoints
from allotrack.endpoints.definitions import Endpoint
from allotrack.errors import InputError
from allotrack.records.dates import DAYS_PER_YEAR
from allotrack.records.dictionary import DataDictionary, default_dictionary
from allotrack.records.schema import Records
from allotrack.study.plan import GroupVariable, MatchingSpec, StudyPlan, VariableSpec

if TYPE_CHECKING:
    from allotrack.design.matching import MatchResult

# the per-patient covariates every analysis dataset has (from derive_endpoints and the columns added here), which
# a plan may group by without declaring them in [[groups]]
DATASET_COLUMNS = frozenset({
    "sex", "centre", "arm", "diagnosis", "age_at_diagnosis", "eln2022_risk", "n_courses", "n_infusions",
    "donor_relation", "donor_sex", "donor_age", "sex_pair", "hla_mismatches", "cd34_per_kg_first", "best_response",
    "cr",
    "max_agvhd_grade", "early_death", "unrelated_donor", "died", "death_cause", "stratum"})  # fmt: skip

# how a report names the dataset's own columns when the plan gives no label
COLUMN_LABELS = {
    "sex": "Sex", "centre": "Centre", "arm": "Arm", "diagnosis": "Diagnosis", "age_at_diagnosis": "Age at diagnosis",
    "eln2022_risk": "ELN 2022 risk", "donor_relation": "Donor relation", "donor_sex": "Donor sex",
    "donor_age": "Donor age", "sex_pair": "Donor → patient sex", "hla_mismatches": "HLA-mismatched loci",
    "unrelated_donor": "Unrelated donor", "stratum": "Randomisation stratum", "death_cause": "Cause of death",
}  # fmt: skip

# the dataset columns known only after a patient's time origin (courses and infusions received, response reached,
# GVHD grade): comparing survival by them credits the survival needed to reach them (immortal-time bias)
KNOWN_LATER = frozenset({"n_courses", "n_infusions", "best_response", "cr", "max_agvhd_grade"})

RELAPSE_FREE_FROM_DIAGNOSIS = Endpoint("rfs_dx", "Relapse-free survival from diagnosis", "diagnosis",
                                       ("relapse", "death"))  # fmt: skip


def status_at(time: pd.Series, status: pd.Series, days: float) -> pd.Series:
    """1 = event-free at ``days``, 0 = event before or at it, missing = censored before it."""
    t = pd.to_numeric(time).astype(float)
    s = pd.to_numeric(status).astype(float)
    out = pd.Series(np.where(t > days, 1.0, np.where(s > 0, 0.0, np.nan)), index=time.index)
    out[t.isna()] = np.nan
    return out.astype("Int64")


def group_variable(values: pd.Series, spec: GroupVariable) -> pd.Series:
    """Cut a numeric column into the plan's labelled groups (right-closed: ``cut = [70]`` gives ≤ 70 | > 70)."""
    x = pd.to_numeric(values, errors="coerce").astype(float)
    cuts = [float(x.median())] if spec.cut == "median" else list(spec.cut)
    codes = np.searchsorted(np.asarray(cuts), x.to_numpy(), side="left")
    labels = np.asarray(spec.labels, dtype=object)
    grouped = labels[np.minimum(codes, len(labels) - 1)]
    grouped[x.isna().to_numpy()] = None
    return pd.Series(grouped, index=values.index, dtype=object)


def variable_values(records: Records, spec: VariableSpec,
                    dictionary: DataDictionary | None = None) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """A plan variable (:class:`~allotrack.study.plan.VariableSpec`) per patient, and the date of each measured
    patient's own value (an item's; indexed by patient id; patients without a value are absent)."""
    if spec.item is not None:
        from allotrack.endpoints.measurements import item_rows

        rows = item_rows(records, spec.item, dictionary)
        where = f"item {spec.item!r}"
        if spec.visit is not None:
            from allotrack.endpoints.measurements import require_visit

            require_visit(records, spec.item, spec.visit, dictionary, f"variable {spec.name!r}")
            rows = rows[rows["visit"] == spec.visit]
            where += f" at visit {spec.visit!r}"
        rows = rows.dropna(subset=["value"]).sort_values(["patient_id", "date"], kind="stable")
        if spec.summary is None:
            twice = rows["patient_id"].duplicated(keep=False)
            if twice.any():
                n = rows.loc[twice, "patient_id"].nunique()
                raise InputError(f"variable {spec.name!r}: {where} has more than one value for {n} patients; give "
                                 "summary = first, last, min or max", table="plan", column=f"variables.{spec.name}")
        if spec.summary in ("min", "max"):
            if not pd.api.types.is_numeric_dtype(rows["value"]):
                raise InputError(f"variable {spec.name!r}: summary = {spec.summary!r} needs a numeric item, and "
                                 f"{spec.item!r} is coded", table="plan", column=f"variables.{spec.name}")  # fmt: skip
            rows = rows.sort_values(["patient_id", "value", "date"], ascending=[True, spec.summary == "min", True],
                                    kind="stable")  # fmt: skip
        chosen = rows.drop_duplicates("patient_id", keep="last" if spec.summary == "last" else "first")
        values, dates = chosen.set_index("patient_id")["value"], chosen.set_index("patient_id")["date"]
        choices = (dictionary or default_dictionary()).item(spec.item).choices
        if choices and spec.cut is None:  # a coded item reads as its labels ("not tested", not "not_tested")
            values = values.map({c.code: c.label for c in choices}).fillna(values)
    else:
        assert spec.table is not None and spec.column is not None  # the plan's validator
        frame = records[spec.table]
        if spec.column not in frame.columns:
            raise InputError(f"variable {spec.name!r}: table {spec.table!r} has no column {spec.column!r} (it has "
                             f"{list(frame.columns)})", table=spec.table, column=spec.column)  # fmt: skip
        rows = frame.dropna(subset=[spec.column]).drop_duplicates("patient_id")
        values, dates = rows.set_index("patient_id")[spec.column], pd.Series(dtype="datetime64[ns]")
    if spec.cut is not None and spec.labels is not None:
        values = group_variable(values, GroupVariable(name=spec.name, variable=spec.name, cut=spec.cut,
                                                      labels=spec.labels))  # fmt: skip
    if spec.from_case:
        sets = records["matched_sets"]
        case_set = sets[sets["role"] == "case"].drop_duplicates("set_id").set_index("set_id")["patient_id"]
        member_case = sets.set_index("patient_id")["set_id"].map(case_set).dropna()
        values = member_case.map(values).dropna()  # the dates stay each measured patient's own
    return values.rename(spec.name), dates.rename(f"{spec.name}_date")


def analysis_dataset(records: Records, plan: StudyPlan, validate: bool = True,
                     dictionary: DataDictionary | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per patient: endpoints (times in days), covariates, grouping variables, landmark statuses."""
    eps = [plan.endpoint(name) for name in plan.endpoints.use] + [RELAPSE_FREE_FROM_DIAGNOSIS]
    derived = derive_endpoints(records, endpoints=eps, early_death_days=plan.endpoints.early_death_days,
                               validate=validate)  # fmt: skip
    data = derived.data.rename(columns={f"early_death_{plan.endpoints.early_death_days}d": "early_death"})
    diagnosis = records["patients"].drop_duplicates("patient_id").set_index("patient_id")["diagnosis"]
    data.insert(1, "diagnosis", data["patient_id"].map(diagnosis))
    enrolment = records["enrolments"].drop_duplicates("patient_id").set_index("patient_id")
    enrolled = {c: data["patient_id"].map(enrolment[c]) if c in enrolment.columns else pd.Series(
        None, index=data.index, dtype=object) for c in ("arm", "stratum")}  # fmt: skip
    # the enrolment record's arm where the patient record has none, and the randomisation stratum
    data["arm"] = data["arm"].fillna(enrolled["arm"]) if "arm" in data.columns else enrolled["arm"]
    data["stratum"] = enrolled["stratum"]
    relation = data["donor_relation"]
    data["unrelated_donor"] = (relation == "unrelated").astype("Int64").mask(relation.isna())
    death_rows = records["deaths"].drop_duplicates("patient_id").set_index("patient_id")
    deaths = death_rows["cause"] if "cause" in death_rows.columns else pd.Series(dtype=object)  # optional column
    if "os_status" in data:
        data["died"] = data["os_status"].astype("Int64")
        cause = data["patient_id"].map(deaths)
        # the cause of death of those who died (missing for the living: compared among deaths only, never with
        # "alive" as a category, which would mix mortality with cause)
        data["death_cause"] = cause.astype(object).fillna("not recorded").where(data["died"] == 1, None)
    for years in plan.endpoints.landmark_years:
        label = f"{years:g}y"
        day = years * DAYS_PER_YEAR
        if "os_time" in data:
            data[f"alive_{label}"] = status_at(data["os_time"], data["os_status"], day)
        free = status_at(data["rfs_dx_time"], data["rfs_dx_status"], day)
        data[f"leukaemia_free_{label}"] = free.where(data["cr"] == 1, 0).astype("Int64")
    for var in plan.variables:
        data[var.name] = data["patient_id"].map(variable_values(records, var, dictionary)[0])
    for spec in plan.groups:
        if spec.variable not in data.columns:
            raise InputError(f"group '{spec.name}' cuts an unknown variable (known: {sorted(data.columns)})",
                             table="plan", column=spec.variable)  # fmt: skip
        data[spec.name] = group_variable(data[spec.variable], spec)
    data = data.drop(columns=["rfs_dx_time", "rfs_dx_status"])
    if plan.matching is not None:
        result = plan_matching(data, plan.matching)
        sets = result.sets_frame().set_index("patient_id")
        data[plan.matching.set_column] = data["patient_id"].map(sets["set_id"])
        data[f"{plan.matching.set_column}_weight"] = data["patient_id"].map(sets["weight"])
        named = dict(zip(("case", "control"), plan.matching.groups, strict=True))
        data[f"{plan.matching.set_column}_group"] = data["patient_id"].map(sets["role"].map(named)).fillna(
            "not matched")  # fmt: skip
    return data


def plan_matching(data: pd.DataFrame, spec: MatchingSpec) -> MatchResult:
    """The plan's [matching] on the analysis dataset: the treated patients (``spec.treated``) and the candidate
    controls (the others, within ``spec.among``), complete in the matching columns, matched by
    :func:`allotrack.design.match_controls`."""
    from allotrack.design.matching import match_controls
    from allotrack.records.branching import holds, parse

    def condition(text: str) -> np.ndarray:
        tree = parse(text)
        rows = data.to_dict("records")
        return np.asarray([holds(tree, {str(k): (None if v is pd.NA else v) for k, v in row.items()})
                           for row in rows], dtype=np.bool_)  # fmt: skip

    treated = condition(spec.treated)
    keep = treated | (condition(spec.among) if spec.among else np.ones(len(data), dtype=np.bool_))
    caliper_columns = [c for c in (spec.caliper if isinstance(spec.caliper, dict) else {}) if c != "distance"]
    columns = list(dict.fromkeys([*spec.covariates, *spec.exact, *caliper_columns]))
    frame = data.loc[keep, ["patient_id", *columns]].assign(_treated=treated[keep]).dropna(subset=columns)
    if not frame["_treated"].any() or frame["_treated"].all():
        raise InputError(f"matching: the condition {spec.treated!r} must hold for some patients and not for others "
                         f"(treated {int(frame['_treated'].sum())} of {len(frame)} with complete matching columns)",
                         table="plan", column="matching.treated")  # fmt: skip
    return match_controls(frame.reset_index(drop=True), "_treated", spec.covariates or None,
                          exact=spec.exact or None, distance=spec.distance, ratio=spec.ratio,
                          max_ratio=spec.max_ratio, caliper=spec.caliper,
                          std_caliper=not isinstance(spec.caliper, dict), replace=spec.replace,
                          m_order=spec.m_order, seed=spec.seed, ids="patient_id")  # fmt: skip
