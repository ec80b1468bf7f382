"""A study's matched sets stored as study-design records (the ``matched_sets`` table): the controls a plan's
[matching] chose (:func:`allotrack.study.dataset.plan_matching`), written through the store's import — validated
against the stored records, all or nothing, one audit row per record — so that the design is kept, reproducible
and readable by later plans (``table = "matched_sets"`` variables) instead of living in a spreadsheet.

Rules: only an administrator (the right ``design``) stores a study's matched sets (they decide who the comparison
group is); storing the same sets again adds nothing; a patient already stored in another set of the study is refused
(a design record is not silently replaced: correct it with ``allotrack import --update --reason``); the study lock
applies as to any import."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from allotrack.errors import InputError
from allotrack.records.schema import Records
from allotrack.web.rights import require

if TYPE_CHECKING:
    from allotrack.records.importing import ImportReport
    from allotrack.records.store import Store
    from allotrack.web.auth import User


def store_matched_sets(store: Store, user: User, study: str, sets: pd.DataFrame,
                       dry_run: bool = False) -> ImportReport:  # fmt: skip
    """Write ``sets`` (:meth:`allotrack.design.matching.MatchResult.sets_frame` rows: patient_id, set_id, role,
    weight) as ``study``'s matched-set records; ``dry_run`` validates and writes nothing."""
    require(user, "design", "only an administrator stores a study's matched sets")
    if not study.strip():
        raise InputError("the matched sets need the study's name", table="matched_sets", column="study")
    frame = sets.assign(study=study)[["patient_id", "study", "set_id", "role", "weight"]]
    return store.import_records(Records.from_frames(matched_sets=frame), user=user.username, dry_run=dry_run)
