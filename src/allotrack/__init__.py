"""allotrack: clinical-outcome studies of allogeneic cell therapies, with numbers that agree with R."""

from allotrack import errors
from allotrack.stats import CoxModel, KaplanMeier, LogRankTest, cox_ph, kaplan_meier, logrank_test

__version__ = "0.1.0"
__all__ = ["CoxModel", "KaplanMeier", "LogRankTest", "cox_ph", "errors", "kaplan_meier", "logrank_test"]
