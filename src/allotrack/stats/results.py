"""Shared base for statistical results: immutable values with ``to_frame()`` and a readable ``repr``."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Result", "TestResult"]


@dataclass(frozen=True)
class Result:
    """Base class: subclasses are frozen dataclasses and implement :meth:`to_frame`."""

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        frame = self.to_frame()
        with pd.option_context("display.max_rows", 20, "display.width", 110, "display.precision", 4):
            return f"<{type(self).__name__}>\n{frame}"


@dataclass(frozen=True, repr=False)
class TestResult(Result):
    """A chi-square test: ``statistic`` on ``dof`` degrees of freedom with its upper-tail ``p_value``."""

    __test__ = False  # not a pytest test class

    name: str
    statistic: float
    dof: int
    p_value: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"test": [self.name], "statistic": [self.statistic], "dof": [self.dof], "p_value": [self.p_value]}
        )


def named_test(tests: pd.DataFrame, name: str) -> TestResult:
    """The row ``name`` of a model's table of global tests (columns test, statistic, dof, p_value) as a
    :class:`TestResult`; an unknown name is an InputError listing the tests there are."""
    from allotrack.errors import InputError

    rows = tests[tests["test"] == name]
    if rows.empty:
        raise InputError(f"no test named {name!r}; available: {list(tests['test'])}")
    row = rows.iloc[0]
    return TestResult(name, float(row["statistic"]), int(row["dof"]), float(row["p_value"]))
