"""Estimators, tests and models: numpy in, immutable results out. Every one is validated against R."""

from allotrack.stats.binary import (
    BinaryComparison,
    BinaryOutcome,
    MantelHaenszelTest,
    binary_counts,
    binary_outcome,
    binary_outcome_table,
    cmh_test,
)
from allotrack.stats.competing import CumulativeIncidence, GrayTest, cumulative_incidence, gray_test
from allotrack.stats.competing_models import CompetingRiskModels, competing_risk_models
from allotrack.stats.conditional_logistic import ConditionalLogisticModel, conditional_logistic
from allotrack.stats.cox import CoxModel, cox_ph
from allotrack.stats.fine_gray import FineGrayModel, fine_gray
from allotrack.stats.follow_up import FollowUp, median_follow_up
from allotrack.stats.kaplan_meier import KaplanMeier, kaplan_meier
from allotrack.stats.logistic import LogisticModel, logistic_regression
from allotrack.stats.logrank import LogRankTest, logrank_test
from allotrack.stats.mixed import EstimatedMeans, MixedModel, fit_mixed_model, mixed_model
from allotrack.stats.paired import (
    FriedmanTest,
    PairedT,
    PairedWilcoxon,
    friedman,
    friedman_test,
    paired_t,
    paired_test,
    paired_wilcoxon,
)
from allotrack.stats.trend import JonckheereTerpstra, TrendTest, cochran_armitage, jonckheere_terpstra, trend_test

__all__ = [
    "BinaryComparison",
    "BinaryOutcome",
    "CompetingRiskModels",
    "ConditionalLogisticModel",
    "CoxModel",
    "CumulativeIncidence",
    "EstimatedMeans",
    "FineGrayModel",
    "FollowUp",
    "FriedmanTest",
    "GrayTest",
    "JonckheereTerpstra",
    "KaplanMeier",
    "LogRankTest",
    "LogisticModel",
    "MantelHaenszelTest",
    "MixedModel",
    "PairedT",
    "PairedWilcoxon",
    "TrendTest",
    "binary_counts",
    "binary_outcome",
    "binary_outcome_table",
    "cmh_test",
    "cochran_armitage",
    "competing_risk_models",
    "conditional_logistic",
    "cox_ph",
    "cumulative_incidence",
    "fine_gray",
    "fit_mixed_model",
    "friedman",
    "friedman_test",
    "gray_test",
    "jonckheere_terpstra",
    "kaplan_meier",
    "logistic_regression",
    "logrank_test",
    "median_follow_up",
    "mixed_model",
    "paired_t",
    "paired_test",
    "paired_wilcoxon",
    "trend_test",
]
