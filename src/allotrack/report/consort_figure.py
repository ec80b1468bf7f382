"""A CONSORT 2010 flow diagram drawn from counted boxes (matplotlib): enrolment, exclusions, randomisation, then
one column per arm for allocation, follow-up and analysis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_consort(enrolled: str, excluded: str, randomised: str, columns: Sequence[Sequence[str]]) -> Figure:
    """``enrolled``, ``excluded`` and ``randomised`` are the texts of the top boxes; ``columns`` one list of box
    texts per arm (allocation, follow-up, analysis …), drawn top to bottom with arrows."""
    import matplotlib.pyplot as plt

    n_arms = max(len(columns), 1)
    depth = max((len(c) for c in columns), default=0)
    fig = plt.figure(figsize=(3.6 * n_arms + 1.0, 1.6 * (depth + 3)), dpi=150)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, n_arms)
    ax.set_ylim(-(3.3 + 1.3 * depth), 0.2)
    ax.axis("off")
    box = {"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "#1f4e79", "linewidth": 1.0}
    arrow = {"arrowstyle": "-|>", "color": "#1f4e79", "linewidth": 1.0}
    mid = n_arms / 2

    def put(x: float, y: float, text: str) -> None:
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5, bbox=box, wrap=True)

    side = mid + (0.55 if n_arms > 1 else 0.3)  # the exclusions, right of the main column
    put(mid, -0.4, enrolled)
    put(side, -1.3, excluded)
    put(mid, -2.2, randomised)
    ax.annotate("", (mid, -1.95), (mid, -0.65), arrowprops=arrow)
    ax.annotate("", (side - (0.3 if n_arms > 1 else 0.2), -1.3), (mid, -1.3), arrowprops=arrow)
    for i, texts in enumerate(columns):
        x = i + 0.5
        ax.annotate("", (x, -2.95), (mid, -2.45), arrowprops=arrow)
        for k, text in enumerate(texts):
            y = -3.3 - 1.3 * k
            put(x, y, text)
            if k:
                ax.annotate("", (x, y + 0.4), (x, y + 0.9), arrowprops=arrow)
    return fig
