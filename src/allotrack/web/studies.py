"""The study list: the bundled demo plan plus study plans uploaded by analysts (validated before they are kept;
every problem is reported with its line and key). A plan run from the web uses the records of the user's data
access group, whatever its ``[data]`` section names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from allotrack.records.store import STUDY_PLANS
from allotrack.study.plan import StudyPlan, parse_plan
from allotrack.study.run import demo_plan_path
from allotrack.web.audit import record_change
from allotrack.web.auth import User
from allotrack.web.data import Forbidden, NotFound
from allotrack.web.rights import require

DEMO_ID = 0


@dataclass(frozen=True)
class StoredPlan:
    plan_id: int
    name: str
    title: str
    n_analyses: int
    created_by: str


def _summary(plan_id: int, name: str, text: str, who: str) -> StoredPlan:
    plan = parse_plan(text, name)
    return StoredPlan(plan_id, name, plan.study.title, len(plan.analyses), who)


def list_plans(engine: sa.Engine) -> list[StoredPlan]:
    plans = [_summary(DEMO_ID, "demo", demo_plan_path().read_text(encoding="utf-8"), "allotrack")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(STUDY_PLANS).order_by(STUDY_PLANS.c.plan_id)).mappings().all()
    return plans + [_summary(r["plan_id"], r["name"], r["plan_toml"], r["created_by"]) for r in rows]


def get_plan(engine: sa.Engine, plan_id: int) -> StudyPlan:
    if plan_id == DEMO_ID:
        return parse_plan(demo_plan_path().read_text(encoding="utf-8"), "demo")
    with engine.connect() as conn:
        row = conn.execute(sa.select(STUDY_PLANS).where(STUDY_PLANS.c.plan_id == plan_id)).mappings().first()
    if row is None:
        raise NotFound("no such study plan")
    return parse_plan(row["plan_toml"], row["name"])


def save_plan(engine: sa.Engine, user: User, name: str, text: str) -> int:
    """Validate and keep a plan (raises :class:`allotrack.study.plan.PlanError` listing every problem)."""
    require(user, "report", "your role cannot add study plans")
    name = name.strip()[:200] or "plan"
    parse_plan(text, name)
    with engine.begin() as conn:
        if name == "demo" or conn.execute(sa.select(STUDY_PLANS.c.plan_id).where(STUDY_PLANS.c.name == name)).first():
            raise Forbidden("a study plan with this name exists: choose another name")
        result = conn.execute(STUDY_PLANS.insert().values(name=name, plan_toml=text, created_by=user.username,
                                                          created_at=datetime.now(UTC)))  # fmt: skip
        plan_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        record_change(conn, user.username, "create", "study_plans", plan_id, None, user.centre_code,
                      new={"name": name})  # fmt: skip
    return plan_id
