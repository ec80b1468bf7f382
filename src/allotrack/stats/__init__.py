"""Estimators, tests and models: numpy in, immutable results out. Every one is validated against R."""

from allotrack.stats.kaplan_meier import KaplanMeier, kaplan_meier
from allotrack.stats.logrank import LogRankTest, logrank_test

__all__ = ["KaplanMeier", "LogRankTest", "kaplan_meier", "logrank_test"]
