"""Public data sets bundled for examples and tests.

``myeloid``: the AML trial data set of R's ``survival`` package (LGPL ≥ 2; Le-Rademacher et al.,
"Multi-state models", 2018): 646 patients randomised to two arms (``trt`` A/B), with ``futime``/``death``
(days to death or last follow-up), ``txtime`` (days to haematopoietic stem-cell transplant), ``crtime``
(days to complete response) and ``rltime`` (days to relapse); missing times mean the event did not occur.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

__all__ = ["load_myeloid"]


def load_myeloid() -> pd.DataFrame:
    """The ``survival::myeloid`` AML trial (646 rows; times in days)."""
    with files(__package__).joinpath("myeloid.csv").open("r") as fh:
        return pd.read_csv(fh)
