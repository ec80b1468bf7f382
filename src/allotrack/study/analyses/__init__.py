"""The analysis kinds of a study plan (``kind = ...`` in ``[[analyses]]``), each run by one function that returns
a report :class:`~allotrack.report.document.Section`; the functions live in one module per family: survival
(Kaplan–Meier, landmarks, Cox, competing risks), binary, repeated (paired, longitudinal, trend), recovery and
clinical (response, adverse events, chimerism, timelines), matching (balance), consort and design (sample size,
dose finding)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allotrack.report.document import Section
from allotrack.study.analyses.binary import binary_section
from allotrack.study.analyses.clinical import (
    adverse_events_section,
    chimerism_section,
    response_section,
    swimmer_section,
)
from allotrack.study.analyses.consort import consort_section
from allotrack.study.analyses.design import dose_finding_section, sample_size_section
from allotrack.study.analyses.matching import balance_section
from allotrack.study.analyses.recovery import recovery_section
from allotrack.study.analyses.repeated import longitudinal_section, paired_section, trend_section
from allotrack.study.analyses.survival import (
    competing_section,
    cox_section,
    kaplan_meier_section,
    landmark_section,
    time_dependent_cox_section,
)
from allotrack.study.context import Context

__all__ = ["RUNNERS", "Context"]

RUNNERS: dict[str, Callable[[Context, Any], Section]] = {
    "balance": balance_section, "binary": binary_section, "consort": consort_section, "paired": paired_section,
    "longitudinal": longitudinal_section, "trend": trend_section,
    "km": kaplan_meier_section, "landmarks": landmark_section, "cox": cox_section,
    "time_dependent_cox": time_dependent_cox_section, "competing": competing_section, "response": response_section,
    "recovery": recovery_section, "adverse_events": adverse_events_section, "chimerism": chimerism_section,
    "swimmer": swimmer_section, "sample_size": sample_size_section, "dose_finding": dose_finding_section,
}  # fmt: skip
