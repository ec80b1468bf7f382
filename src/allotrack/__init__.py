"""allotrack: clinical-outcome studies of allogeneic cell therapies, with numbers that agree with R."""

from allotrack import errors
from allotrack.stats import KaplanMeier, LogRankTest, kaplan_meier, logrank_test

__version__ = "0.1.0"
__all__ = ["KaplanMeier", "LogRankTest", "errors", "kaplan_meier", "logrank_test"]
