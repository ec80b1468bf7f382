"""Estimators, tests and models: numpy in, immutable results out. Every one is validated against R."""

from allotrack.stats.competing import CumulativeIncidence, GrayTest, cumulative_incidence, gray_test
from allotrack.stats.competing_models import CompetingRiskModels, competing_risk_models
from allotrack.stats.cox import CoxModel, cox_ph
from allotrack.stats.fine_gray import FineGrayModel, fine_gray
from allotrack.stats.kaplan_meier import KaplanMeier, kaplan_meier
from allotrack.stats.logrank import LogRankTest, logrank_test

__all__ = [
    "CompetingRiskModels",
    "CoxModel",
    "CumulativeIncidence",
    "FineGrayModel",
    "GrayTest",
    "KaplanMeier",
    "LogRankTest",
    "competing_risk_models",
    "cox_ph",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
    "kaplan_meier",
    "logrank_test",
]
