"""The one exception family of allotrack.

Every message names where the problem is (table, column, row positions), what was found (values) and the
rule it breaks. Row positions are 0-based positions in the input, never patient identifiers, so that
messages can be logged without exposing clinical identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["AllotrackError", "ConvergenceWarning", "InputError", "ModelError"]

_MAX_SHOWN = 5


class AllotrackError(Exception):
    """Base class of every error allotrack raises on purpose."""


class InputError(AllotrackError, ValueError):
    """Input data break a stated rule.

    Attributes hold the structured facts so that callers (the CLI, the web app) can render them:
    ``table``, ``column``, ``rows`` (0-based positions of the first offending rows), ``values`` (their values)
    and ``rule`` (the rule in words).
    """

    def __init__(
        self,
        rule: str,
        *,
        table: str | None = None,
        column: str | None = None,
        rows: Sequence[int] = (),
        values: Sequence[Any] = (),
        n_bad: int | None = None,
    ) -> None:
        self.rule = rule
        self.table = table
        self.column = column
        self.rows = tuple(int(r) for r in rows[:_MAX_SHOWN])
        self.values = tuple(values[:_MAX_SHOWN])
        self.n_bad = len(rows) if n_bad is None else n_bad
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.table:
            where.append(f"table '{self.table}'")
        if self.column:
            where.append(f"column '{self.column}'")
        text = ", ".join(where)
        if self.rows:
            more = f" (and {self.n_bad - len(self.rows)} more)" if self.n_bad > len(self.rows) else ""
            shown = ", ".join(f"{r} (value {v!r})" for r, v in zip(self.rows, self.values, strict=False))
            if len(self.values) < len(self.rows):
                shown = ", ".join(str(r) for r in self.rows)
            text += f"{', ' if text else ''}row {shown}{more}"
        return f"{text}: {self.rule}" if text else self.rule


class ModelError(AllotrackError, ValueError):
    """A model cannot be fitted as asked (collinear covariates, no events, a singular information matrix)."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped without meeting its convergence rule, or a coefficient diverges (monotone
    likelihood). The result records the same fact in its ``converged`` / ``warnings`` fields."""
