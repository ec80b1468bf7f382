"""Declarative endpoint definitions (``reference/clinical-definitions.md`` §5.1; ELN 2022; Holtan et al.,
Blood 2015 for GRFS).

An endpoint has an origin, the event kinds that end it and, for competing-risk endpoints, the competing kinds.
Status is 1 for the first event kind found, 2 for a competing kind (competing endpoints), 0 when censored at
the last contact. When an event and a competing event fall on the same day, the one listed first wins:
relapse on the day of death counts as relapse (so NRM sees a competing relapse, CIR an event).

Event kinds: ``death``; ``relapse`` (any row of the relapses table); ``death_without_relapse``;
``agvhd_2_4`` / ``agvhd_3_4`` (first acute GVHD assessment of grade ≥ 2 / ≥ 3);
``cgvhd`` (first chronic GVHD assessment of NIH severity mild, moderate or severe); ``cgvhd_systemic`` (chronic
GVHD needing systemic therapy); ``refractory`` (no remission within the
endpoint's ``landmark_days``; the event is set on day 1 as ELN 2022 does for EFS).
Origins: ``diagnosis``, ``randomization`` (the patient's randomisation date, else the enrolment record's),
``enrolment``, ``first_course``, ``first_infusion`` (any cell product), ``hsct`` (the first infusion of product
HSCT), ``first_infusion:<product>`` (the first infusion of a named product, e.g. ``first_infusion:NK``),
``first_intervention:<agent>`` (the first intervention of a dictionary agent, e.g.
``first_intervention:basiliximab``), ``first_remission``.

``horizon_days`` censors administratively: an event after origin + horizon is not counted, and follow-up ends
there (e.g. a trial's 52-week disease-free survival).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ORIGINS = ("diagnosis", "randomization", "enrolment", "first_course", "first_infusion", "hsct", "first_remission")
NAMED_ORIGINS = ("first_infusion:", "first_intervention:")  # followed by a product or an agent
KINDS = ("death", "relapse", "death_without_relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd", "cgvhd_systemic",
         "refractory")


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    origin: str
    events: tuple[str, ...]
    competing: tuple[str, ...] = ()
    landmark_days: int | None = None  # for "refractory"
    horizon_days: float | None = None  # administrative censoring at origin + horizon

    def __post_init__(self) -> None:
        named = self.origin.startswith(NAMED_ORIGINS) and self.origin.split(":", 1)[1].strip() != ""
        if self.origin not in ORIGINS and not named:
            raise ValueError(f"endpoint {self.name}: origin must be one of {ORIGINS} or first_infusion:<product> "
                             f"or first_intervention:<agent>, not {self.origin!r}")
        if self.horizon_days is not None and not self.horizon_days > 0:
            raise ValueError(f"endpoint {self.name}: horizon_days must be positive, not {self.horizon_days!r}")
        for kind in (*self.events, *self.competing):
            if kind not in KINDS:
                raise ValueError(f"endpoint {self.name}: unknown event kind {kind!r}; kinds are {KINDS}")

    @property
    def is_competing(self) -> bool:
        return bool(self.competing)

    @property
    def origin_label(self) -> str:
        """The origin as a report says it: "diagnosis", "HSCT", "first remission", "first infusion of NK",
        "first basiliximab"."""
        if self.origin.startswith("first_infusion:"):
            return f"first infusion of {self.origin.split(':', 1)[1].strip()}"
        if self.origin.startswith("first_intervention:"):
            return f"first {self.origin.split(':', 1)[1].strip()}"
        return {"hsct": "HSCT", "randomization": "randomisation"}.get(self.origin, self.origin.replace("_", " "))


ENDPOINTS: Mapping[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("os", "Overall survival", "diagnosis", ("death",)),
        Endpoint("lfs", "Leukaemia-free survival (from first remission)", "first_remission", ("relapse", "death")),
        Endpoint("pfs", "Progression-free survival (from the first course)", "first_course", ("relapse", "death")),
        Endpoint("efs", "Event-free survival", "diagnosis", ("refractory", "relapse", "death"), landmark_days=180),
        Endpoint(
            "cir",
            "Cumulative incidence of relapse (from first remission)",
            "first_remission",
            ("relapse",),
            ("death_without_relapse",),
        ),
        Endpoint("nrm", "Non-relapse mortality", "first_infusion", ("death_without_relapse",), ("relapse",)),
        Endpoint(
            "grfs",
            "GVHD-free relapse-free survival",
            "first_infusion",
            ("agvhd_3_4", "cgvhd_systemic", "relapse", "death"),
        ),
        Endpoint("agvhd", "Acute GVHD grade II-IV", "first_infusion", ("agvhd_2_4",), ("death",)),
        Endpoint("cgvhd", "Chronic GVHD needing systemic therapy", "first_infusion", ("cgvhd_systemic",), ("death",)),
    )
}
