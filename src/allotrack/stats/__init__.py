"""Estimators, tests and models: numpy in, immutable results out. Every one is validated against R."""

from allotrack.stats.cox import CoxModel, cox_ph
from allotrack.stats.kaplan_meier import KaplanMeier, kaplan_meier
from allotrack.stats.logrank import LogRankTest, logrank_test

__all__ = ["CoxModel", "KaplanMeier", "LogRankTest", "cox_ph", "kaplan_meier", "logrank_test"]
