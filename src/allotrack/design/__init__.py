"""Study designs: randomisation (:mod:`.randomisation`), matched controls (:mod:`.matching`, :mod:`.balance`), dose
finding (:mod:`.dose_finding`) and sample size and power (:mod:`.power`)."""

from allotrack.design.balance import BalanceTable, balance_table
from allotrack.design.dose_finding import (
    BoinBoundaries,
    DoseDecisions,
    DoseResponse,
    MtdSelection,
    boin_boundaries,
    dose_decision,
    dose_decisions,
    dose_response,
    select_mtd,
    three_plus_three,
)
from allotrack.design.matching import MatchResult, match_controls
from allotrack.design.power import SampleSize, competing_risks, exponential_event_probability, logrank, two_proportions
from allotrack.design.randomisation import (
    AllocationList,
    MinimisationChoice,
    RandomisationDesign,
    minimisation,
    randomisation_list,
)

__all__ = [
    "AllocationList", "BalanceTable", "BoinBoundaries", "DoseDecisions", "DoseResponse", "MatchResult",
    "MinimisationChoice", "MtdSelection", "RandomisationDesign", "SampleSize", "balance_table", "boin_boundaries",
    "competing_risks", "dose_decision", "dose_decisions", "dose_response", "exponential_event_probability",
    "logrank", "match_controls", "minimisation", "randomisation_list", "select_mtd", "three_plus_three",
    "two_proportions",
]  # fmt: skip
