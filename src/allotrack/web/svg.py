"""Small server-side SVG line charts for patient pages (no JavaScript, no plotting library per request: a
patient page must render in milliseconds under load)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

COLOURS = ("#1f4e79", "#c0504d", "#2e7d32", "#8e44ad")


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, log_y: bool = False,
               hlines: Sequence[tuple[float, str]] = (), bands: Sequence[tuple[float, float]] = (),
               x_label: str = "", y_label: str = "", width: int = 720, height: int = 260) -> str:  # fmt: skip
    """Polylines for each named series (x, y), optional horizontal reference lines (value, label) and shaded
    x-intervals (e.g. recovery windows)."""
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=True) if y is not None and y == y]
    if not pts:
        return '<p class="muted">No values recorded.</p>'
    left, right, top, bottom = 56, 16, 12, 40
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts] + [v for v, _ in hlines]
    tf = (lambda v: math.log10(max(v, 1e-3))) if log_y else (lambda v: v)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(tf(v) for v in ys), max(tf(v) for v in ys)
    y1 = y1 if y1 > y0 else y0 + 1

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def sy(v: float) -> float:
        return top + (1 - (tf(v) - y0) / (y1 - y0)) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart">']
    for a, b in bands:
        out.append(f'<rect x="{sx(a):.1f}" y="{top}" width="{max(sx(b) - sx(a), 1):.1f}" '
                   f'height="{height - top - bottom}" fill="#e8f0e0"/>')  # fmt: skip
    out.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#555"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>')
    for v, label in hlines:
        y = sy(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#777" '
                   f'stroke-dasharray="4 3"/><text x="{width - right}" y="{y - 3:.1f}" font-size="10" '
                   f'text-anchor="end">{escape(label)}</text>')  # fmt: skip
    for i, (name, (xv, yv)) in enumerate(series.items()):
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xv, yv, strict=True) if y is not None and y == y)
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        out.append(f'<text x="{left + 8 + 110 * i}" y="{top + 12}" font-size="11" fill="{colour}">'
                   f"{escape(name)}</text>")  # fmt: skip
    for k in range(5):
        tick = x0 + (x1 - x0) * k / 4
        out.append(f'<text x="{sx(tick):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">'
                   f"{tick:.0f}</text>")  # fmt: skip
    for k in range(4):
        level = y0 + (y1 - y0) * k / 3
        value = 10**level if log_y else level
        out.append(f'<text x="{left - 4}" y="{sy(value) + 3:.1f}" font-size="10" text-anchor="end">{value:.3g}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
               f"{escape(x_label)}</text>")  # fmt: skip
    out.append(f'<text x="12" y="{(top + height - bottom) / 2}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 12 {(top + height - bottom) / 2})">{escape(y_label)}</text></svg>')  # fmt: skip
    return "".join(out)
