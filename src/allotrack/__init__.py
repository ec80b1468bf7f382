"""allotrack: clinical-outcome studies of allogeneic cell therapies, with numbers that agree with R."""

from allotrack import errors
from allotrack.stats import (
    CompetingRiskModels,
    CoxModel,
    CumulativeIncidence,
    FineGrayModel,
    GrayTest,
    KaplanMeier,
    LogRankTest,
    competing_risk_models,
    cox_ph,
    cumulative_incidence,
    fine_gray,
    gray_test,
    kaplan_meier,
    logrank_test,
)

__version__ = "0.1.0"
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
    "errors",
    "fine_gray",
    "gray_test",
    "kaplan_meier",
    "logrank_test",
]
