"""Cause-specific and subdistribution hazard models for one competing-risks endpoint, side by side.

The cause-specific hazard ratio (Cox on the cause of interest, competing events censored) answers "what
drives the event rate among those still at risk"; the subdistribution hazard ratio (Fine–Gray) answers "what
changes the cumulative incidence". Both are routinely reported together for CIR and NRM (Latouche et al.,
J Clin Epidemiol 2013;66:648–53).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allotrack.stats import _input
from allotrack.stats._events import cause_array, resolve_cause
from allotrack.stats.cox import CoxModel, cox_ph
from allotrack.stats.fine_gray import FineGrayModel, fine_gray
from allotrack.stats.results import Result

__all__ = ["CompetingRiskModels", "competing_risk_models"]


@dataclass(frozen=True, repr=False)
class CompetingRiskModels(Result):
    """``cause_specific`` (a :class:`CoxModel`) and ``subdistribution`` (a :class:`FineGrayModel`) for ``cause``."""

    cause: Any
    cause_specific: CoxModel
    subdistribution: FineGrayModel

    def to_frame(self) -> pd.DataFrame:
        cs = self.cause_specific.summary
        sd = self.subdistribution.summary
        return pd.DataFrame(
            {
                "csh": cs["hr"], "csh_lower": cs["hr_lower"], "csh_upper": cs["hr_upper"], "csh_p": cs["p"],
                "shr": sd["shr"], "shr_lower": sd["shr_lower"], "shr_upper": sd["shr_upper"], "shr_p": sd["p"],
            },
            index=cs.index,
        )  # fmt: skip


def competing_risk_models(
    data: Any,
    time: _input.ColumnSpec = "time",
    event: _input.ColumnSpec = "event",
    covariates: Sequence[str] | None = None,
    formula: str | None = None,
    cause: Any = 1,
    censor: Any = 0,
    ties: str = "efron",
) -> CompetingRiskModels:
    """Fit the cause-specific Cox model (R ``coxph(Surv(time, status == cause) ~ ...)``) and the Fine–Gray
    model (R ``crr``) for ``cause`` on the same covariates."""
    codes, causes = cause_array(data, event, censor)
    code = resolve_cause(cause, causes, _input.column_name(event, "event"))
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    indicator = (codes == code).astype(float)
    cs = cox_ph(frame.assign(_cause_event=indicator), time, "_cause_event", covariates=covariates,
                formula=formula, ties=ties)  # fmt: skip
    sd = fine_gray(frame, time, event, covariates=covariates, formula=formula, cause=cause, censor=censor)
    assert np.array_equal(cs.summary.index, sd.summary.index)
    return CompetingRiskModels(cause=causes[code - 1], cause_specific=cs, subdistribution=sd)
