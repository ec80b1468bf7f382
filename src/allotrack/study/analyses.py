"""The analysis kinds of a study plan (``kind = ...`` in ``[[analyses]]``), each run by one function that returns
a report :class:`~allotrack.report.document.Section`; the functions live in one module per family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allotrack.report.document import Section
from allotrack.study.binary_section import binary_section
from allotrack.study.clinical_sections import (
    adverse_events_section,
    chimerism_section,
    response_section,
    swimmer_section,
)
from allotrack.study.context import Context
from allotrack.study.recovery_section import recovery_section
from allotrack.study.repeated_section import longitudinal_section, paired_section, trend_section
from allotrack.study.survival_sections import (
    competing_section,
    cox_section,
    kaplan_meier_section,
    landmark_section,
    time_dependent_cox_section,
)

__all__ = ["RUNNERS", "Context"]

RUNNERS: dict[str, Callable[[Context, Any], Section]] = {
    "binary": binary_section, "paired": paired_section, "longitudinal": longitudinal_section,
    "trend": trend_section,
    "km": kaplan_meier_section, "landmarks": landmark_section, "cox": cox_section,
    "time_dependent_cox": time_dependent_cox_section, "competing": competing_section, "response": response_section,
    "recovery": recovery_section, "adverse_events": adverse_events_section, "chimerism": chimerism_section,
    "swimmer": swimmer_section,
}  # fmt: skip
