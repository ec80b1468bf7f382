"""Randomisation in the store: set up a study's allocation (design and concealed list), allocate enrolled and
eligible patients one at a time, and read the allocation log — the only paths to the tables of migration 0008,
used alike by the web pages, the API and the CLI.

Rules (REDCap's randomisation module; the rights of :mod:`allotrack.web.rights`): only an administrator (the right
``design``) sets up a randomisation, once per study (the seed is kept with the design, readable by nobody through
allotrack); a data manager or an administrator (the right ``randomise``) randomises a patient of their data access
group — another centre's patient is answered like an unknown one; a patient is randomised only once enrolled in the
study with eligibility recorded as yes (the arm stays concealed until then), and only once, ever (the database's
unique index holds this also for two enrolments at the same moment); the study lock stops randomisation; the
allocation log is append-only and each allocation writes its audit row and sets the enrolment record's arm, stratum,
allocation number and randomisation date in the same transaction. Only an administrator reads the log and the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from allotrack.design.randomisation import RandomisationDesign, minimisation, randomisation_list
from allotrack.errors import InputError
from allotrack.records.hashing import content_and_key_values
from allotrack.records.importing import ImportConflict, write_transaction
from allotrack.records.schema import TABLES
from allotrack.records.store import METADATA
from allotrack.records.tables import ALLOCATION_LISTS, ALLOCATIONS, RANDOMISATION_DESIGNS, typed_frame
from allotrack.web.audit import is_locked, record_change
from allotrack.web.auth import User
from allotrack.web.data import Forbidden, NotFound
from allotrack.web.rights import require

PATIENT_FACTORS = ("centre", "sex", "diagnosis")  # patient columns a design may stratify or minimise by


@dataclass(frozen=True)
class Allocation:
    """One patient's allocation: arm, stratum, list position (None for minimisation), allocation number."""

    study: str
    patient_id: str
    arm: str
    stratum: str
    position: int | None
    number: int


def set_up(engine: sa.Engine, user: User, study: str, design: RandomisationDesign, seed: int,
           strata: list[str] | None = None, n_per_stratum: int = 0) -> int:  # fmt: skip
    """Store ``study``'s design and, for permuted blocks, its allocation list (``strata``: every stratum label,
    ``n_per_stratum`` positions each). Returns the number of list positions. Refused for a study already set up."""
    require(user, "design", "only an administrator sets up a randomisation")
    if not study.strip():
        raise InputError("the study needs a name", table="randomisation_designs", column="study")
    unknown = [f for f in design.stratify_by if f not in PATIENT_FACTORS]
    if unknown:
        raise InputError(f"stratification factor(s) {unknown} are not patient columns ({list(PATIENT_FACTORS)})",
                         table="randomisation_designs", column="stratify_by")  # fmt: skip
    rows: pd.DataFrame | None = None
    if design.method == "blocks":
        labels = strata if design.stratify_by else ["all"]
        if not labels:
            raise InputError("permuted blocks need the list of strata", table="allocation_lists", column="stratum")
        rows = randomisation_list(design, labels, n_per_stratum, seed).table.assign(study=study)
    document = json.dumps({"arms": dict(design.arms), "stratify_by": list(design.stratify_by),
                           "method": design.method, "block_sizes": list(design.sizes), "p_best": design.p_best})
    with write_transaction(engine) as conn:
        if conn.execute(sa.select(RANDOMISATION_DESIGNS.c.study).where(RANDOMISATION_DESIGNS.c.study == study)).first():
            raise InputError(f"study {study!r} already has a randomisation; it cannot be set up again",
                             table="randomisation_designs", column="study")  # fmt: skip
        conn.execute(RANDOMISATION_DESIGNS.insert().values(study=study, design=document, seed=int(seed),
                                                           created_by=user.username, created_at=datetime.now(UTC)))
        if rows is not None:
            columns = zip(rows["stratum"].tolist(), rows["position"].tolist(), rows["block"].tolist(),
                          rows["block_size"].tolist(), rows["arm"].tolist(), strict=True)  # fmt: skip
            conn.execute(ALLOCATION_LISTS.insert(), [
                {"study": study, "stratum": str(s), "position": int(p), "block": int(b), "block_size": int(z),
                 "arm": str(a)} for s, p, b, z, a in columns])  # fmt: skip
        record_change(conn, user.username, "set up", "randomisation_designs", None, None, None, None,
                      {"study": study, **json.loads(document), "positions": 0 if rows is None else len(rows)})
    return 0 if rows is None else len(rows)


def _design(conn: sa.Connection, study: str) -> tuple[RandomisationDesign, int]:
    row = conn.execute(sa.select(RANDOMISATION_DESIGNS).where(RANDOMISATION_DESIGNS.c.study == study)).first()
    if row is None:
        raise NotFound(f"study {study!r} has no randomisation set up")
    d = json.loads(row.design)
    return RandomisationDesign(d["arms"], tuple(d["stratify_by"]), d["method"], tuple(d["block_sizes"]),
                               d["p_best"]), int(row.seed)  # fmt: skip


def _current(conn: sa.Connection, table: str, *where: Any) -> pd.DataFrame:
    t = METADATA.tables[table]
    rows = conn.execute(sa.select(t).where(t.c.deleted == sa.false(), *where)).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in t.columns])


def allocate(engine: sa.Engine, user: User, study: str, patient_id: str, today: date | None = None) -> Allocation:
    """Randomise one patient (see the module's rules); returns the allocation."""
    require(user, "randomise", "your role cannot randomise patients")
    day = today or date.today()
    try:
        with write_transaction(engine) as conn:
            return _allocate(conn, user, study, patient_id, day)
    except ImportConflict:
        raise InputError(f"patient {patient_id!r} is being randomised by someone else at this moment, or the store "
                         "is busy; look at the enrolment before trying again", table="allocations",
                         column="patient_id") from None  # fmt: skip


def _allocate(conn: sa.Connection, user: User, study: str, patient_id: str, day: date) -> Allocation:
    design, seed = _design(conn, study)
    patients = METADATA.tables["patients"]
    scope = [patients.c.centre_code == user.centre_code] if user.centre_code else []
    patient = _current(conn, "patients", patients.c.patient_id == patient_id, *scope)
    if patient.empty:
        raise NotFound("no such patient in your data access group")
    if is_locked(conn):
        raise Forbidden("the study data are locked: no patient can be randomised")
    enrolments = METADATA.tables["enrolments"]
    enrolment = _current(conn, "enrolments", enrolments.c.patient_id == patient_id, enrolments.c.study == study)
    eligible = None if enrolment.empty else enrolment["eligible"].iloc[0]
    if eligible is None or pd.isna(eligible) or not bool(eligible):
        raise InputError(f"patient {patient_id!r} must be enrolled in {study!r} with eligible = yes before being "
                         "randomised (the allocation stays concealed until then)", table="enrolments",
                         column="eligible")  # fmt: skip
    done = conn.execute(sa.select(ALLOCATIONS.c.allocated_at).where(ALLOCATIONS.c.study == study,
                                                                   ALLOCATIONS.c.patient_id == patient_id)).first()
    if done is not None:
        raise InputError(f"patient {patient_id!r} was already randomised in {study!r} (once, ever)",
                         table="allocations", column="patient_id")  # fmt: skip
    levels = {f: patient[f].iloc[0] for f in design.stratify_by}
    if any(v is None for v in levels.values()):
        raise InputError(f"patient {patient_id!r} has no value for a stratification factor {list(levels)}",
                         table="patients", column=next(f for f, v in levels.items() if v is None))  # fmt: skip
    stratum = " | ".join(f"{f}={v}" for f, v in levels.items()) if levels else "all"
    number = int(conn.execute(sa.select(sa.func.count()).select_from(ALLOCATIONS)
                              .where(ALLOCATIONS.c.study == study)).scalar_one()) + 1  # fmt: skip
    position: int | None = None
    details: dict[str, Any] = {"factors": {k: str(v) for k, v in levels.items()}}
    if design.method == "blocks":
        used = sa.select(ALLOCATIONS.c.position).where(ALLOCATIONS.c.study == study, ALLOCATIONS.c.stratum == stratum,
                                                       ALLOCATIONS.c.position.is_not(None))  # fmt: skip
        nxt = conn.execute(sa.select(ALLOCATION_LISTS.c.position, ALLOCATION_LISTS.c.arm)
                           .where(ALLOCATION_LISTS.c.study == study, ALLOCATION_LISTS.c.stratum == stratum,
                                  ALLOCATION_LISTS.c.position.not_in(used))
                           .order_by(ALLOCATION_LISTS.c.position).limit(1)).first()  # fmt: skip
        if nxt is None:
            raise InputError(f"the allocation list of stratum {stratum!r} has no free position (an unknown stratum or "
                             "a used-up list): an administrator must extend it", table="allocation_lists",
                             column="stratum")  # fmt: skip
        position, arm = int(nxt.position), str(nxt.arm)
    else:
        previous = conn.execute(sa.select(ALLOCATIONS.c.arm, ALLOCATIONS.c.details)
                                .where(ALLOCATIONS.c.study == study)).all()  # fmt: skip
        history = pd.DataFrame([{**json.loads(r.details)["factors"], "arm": r.arm} for r in previous],
                               columns=[*design.stratify_by, "arm"])  # fmt: skip
        choice = minimisation(design, history, levels, seed, number)
        arm = choice.arm
        details |= {"imbalance": dict(choice.imbalance), "took_best": choice.took_best}
    centre = patient["centre_code"].iloc[0]
    result = conn.execute(ALLOCATIONS.insert().values(
        study=study, patient_id=patient_id, centre_code=centre, stratum=stratum, position=position, arm=arm,
        method=design.method, details=json.dumps(details), allocated_by=user.username,
        allocated_at=datetime.now(UTC)))  # fmt: skip
    allocation_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    _set_enrolment(conn, user, enrolment.iloc[0], {"arm": arm, "stratum": stratum, "allocation_number": number,
                                                   "randomisation_date": day})  # fmt: skip
    record_change(conn, user.username, "randomise", "allocations", allocation_id, patient_id, centre, None,
                  {"study": study, "stratum": stratum, "position": position, "arm": arm, "number": number})
    return Allocation(study, patient_id, arm, stratum, position, number)


def _set_enrolment(conn: sa.Connection, user: User, row: pd.Series, values: dict[str, Any]) -> None:
    """Write the allocation into the enrolment record (its content hash follows), with an audit row."""
    spec = TABLES["enrolments"]
    names = [c.name for c in spec.columns]
    new = row[names].to_dict() | values
    typed = typed_frame(pd.DataFrame([new]).astype(object), spec)
    content, _key = content_and_key_values(typed, "enrolments")
    t = METADATA.tables["enrolments"]
    conn.execute(t.update().where(t.c.row_id == int(row["row_id"])).values(
        **values, record_hash=int(content.view(np.int64)[0])))  # fmt: skip
    old = {k: row[k] for k in values}
    record_change(conn, user.username, "update", "enrolments", int(row["row_id"]), str(row["patient_id"]),
                  row["centre_code"], old, values, "randomisation")  # fmt: skip


def allocation_log(engine: sa.Engine, user: User, study: str) -> pd.DataFrame:
    """The allocation log of ``study`` in allocation order: who, when, stratum, arm, list position (administrators
    only: it reveals every arm)."""
    require(user, "design", "only an unblinded administrator reads the allocation log")
    if user.blinded:
        raise Forbidden("only an unblinded administrator reads the allocation log")
    with engine.connect() as conn:
        _design(conn, study)
        rows = conn.execute(sa.select(ALLOCATIONS).where(ALLOCATIONS.c.study == study)
                            .order_by(ALLOCATIONS.c.allocation_id)).mappings().all()  # fmt: skip
    frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in ALLOCATIONS.columns])
    frame.insert(0, "number", np.arange(1, len(frame) + 1))
    return frame.drop(columns=["allocation_id", "details"])


def allocation_balance(engine: sa.Engine, user: User, study: str) -> pd.DataFrame:
    """Patients allocated per stratum and arm, with the total (administrators only)."""
    log = allocation_log(engine, user, study)
    table = pd.crosstab(log["stratum"], log["arm"], margins=True, margins_name="Total") if len(log) else \
        pd.DataFrame()  # fmt: skip
    return table.reset_index() if len(table) else table


def list_randomisations(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every randomised study: its method, arms and the number of patients allocated so far (no arm counts)."""
    with engine.connect() as conn:
        designs = conn.execute(sa.select(RANDOMISATION_DESIGNS.c.study, RANDOMISATION_DESIGNS.c.design)
                               .order_by(RANDOMISATION_DESIGNS.c.study)).all()  # fmt: skip
        counts: dict[str, int] = {str(s): int(n) for s, n in conn.execute(
            sa.select(ALLOCATIONS.c.study, sa.func.count()).group_by(ALLOCATIONS.c.study)).all()}  # fmt: skip
    out = []
    for study, document in designs:
        d = json.loads(document)
        arms = " : ".join(f"{a} ({r})" for a, r in d["arms"].items())
        out.append({"study": study, "method": d["method"], "arms": arms,
                    "stratify_by": ", ".join(d["stratify_by"]) or "none", "allocated": counts.get(study, 0)})
    return out
