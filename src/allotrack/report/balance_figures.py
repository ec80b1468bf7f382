"""Love plot: absolute standardised mean differences per covariate before and after matching (the layout of
cobalt's ``love.plot(abs = TRUE)``), drawn from a :class:`~allotrack.design.balance.BalanceTable` or a
:class:`~allotrack.design.matching.MatchResult` (its ``balance()``). Computation never imports this module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from allotrack.errors import InputError
from allotrack.report.figures import PALETTE, _save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from allotrack.design.balance import BalanceTable

__all__ = ["love_plot"]

_ORDERS = (None, "unadjusted", "adjusted", "alphabetical")


def love_plot(
    balance: Any,
    threshold: float | None = 0.1,
    order: str | None = None,
    include_distance: bool = True,
    labels: dict[str, str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    save: str | Path | Sequence[str | Path] | None = None,
) -> Figure:
    """Absolute standardised mean difference of every balance row before (open circles) and after (filled
    circles) matching, one line per term, with a dashed reference line at ``threshold`` (0.1 by default; ``None``
    for none).

    ``balance`` is a :class:`~allotrack.design.balance.BalanceTable` or anything with a ``balance()`` method (a
    :class:`~allotrack.design.matching.MatchResult`). ``order``: ``None`` keeps the table's order (top to
    bottom), ``"unadjusted"`` / ``"adjusted"`` sorts by the SMD before / after matching (largest at the top),
    ``"alphabetical"`` by term. ``include_distance=False`` leaves out the propensity score's row; ``labels`` maps
    terms to display names. ``save`` writes the figure to one or more files (format from the suffix)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table: BalanceTable = balance.balance() if hasattr(balance, "balance") else balance
    if order not in _ORDERS:
        raise InputError(f"order must be one of {_ORDERS}, not {order!r}")
    before = table.before["smd"].abs()
    after = None if table.after is None else table.after["smd"].abs()
    terms = list(before.index)
    if not include_distance:
        terms = [t for t in terms if t != "distance"]
    if order == "unadjusted":
        terms = sorted(terms, key=lambda t: -np.nan_to_num(before[t], nan=-np.inf))
    elif order == "adjusted":
        if after is None:
            raise InputError("order='adjusted' needs a balance table after matching (weights)")
        terms = sorted(terms, key=lambda t: -np.nan_to_num(after[t], nan=-np.inf))
    elif order == "alphabetical":
        terms = sorted(terms)
    names = [(labels or {}).get(t, t) for t in terms]

    y = np.arange(len(terms))[::-1].astype(float)  # first term at the top
    fig, ax = plt.subplots(figsize=figsize or (6.0, 1.2 + 0.32 * len(terms)), dpi=150)
    for yy in y:
        ax.axhline(yy, color="0.92", lw=0.6, zorder=0)
    ax.axvline(0.0, color="0.3", lw=0.8)
    if threshold is not None:
        ax.axvline(threshold, color="0.4", lw=0.8, ls="--")
    b_vals = before[terms].to_numpy(dtype=float)
    ax.scatter(b_vals, y, s=34, facecolors="white", edgecolors=PALETTE[1], linewidths=1.3, zorder=3,
               label="Before matching")  # fmt: skip
    handles = [Line2D([], [], ls="", marker="o", mfc="white", mec=PALETTE[1], mew=1.3, label="Before matching")]
    a_vals = np.array([])
    if after is not None:
        a_vals = after[terms].to_numpy(dtype=float)
        ax.scatter(a_vals, y, s=34, color=PALETTE[0], zorder=4, label="After matching")
        handles.append(Line2D([], [], ls="", marker="o", color=PALETTE[0], label="After matching"))
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8.5)
    ax.set_ylim(-0.7, len(terms) - 0.3)
    finite = [v for v in (*b_vals, *a_vals) if np.isfinite(v)]
    top = max([*finite, threshold or 0.0, 0.05])
    ax.set_xlim(-0.02 * top, top * 1.08)
    ax.set_xlabel("Absolute standardised mean difference")
    ax.spines[["top", "right"]].set_visible(False)
    # above the plot, right-aligned: inside it would cover the bottom rows' points
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
              borderaxespad=0.2)  # fmt: skip
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    fig.tight_layout()
    _save(fig, save)
    return fig
