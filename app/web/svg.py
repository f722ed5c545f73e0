"""Inline SVG charts drawn on the server: pure functions from numbers to markup.

No JavaScript and no external assets: a page embeds the returned string as is. Every
text that comes from data is escaped; every coordinate stays inside the ``viewBox``.
Missing values (``None``) break a line instead of being drawn as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f5fbf", "#d9731a", "#2e8b57", "#a23b9c", "#8c6d1f", "#c0392b")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True, slots=True)
class Point:
    """One x position of a series: ``y`` with an optional band ``[low, high]``."""

    x: float
    y: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class Series:
    """A named line of points, drawn in ``PALETTE[index]``."""

    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class ForestRow:
    """One estimate with its interval (a row of a forest plot)."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    emphasis: bool = False


@dataclass(frozen=True, slots=True)
class Box:
    """The plotting area inside the chart: left, top, width, height (pixels)."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


def linear_scale(domain: tuple[float, float],
                 pixels: tuple[float, float]) -> Callable[[float], float]:
    """Map ``domain`` linearly onto ``pixels`` (a zero-width domain maps to the middle).

    Examples:
        >>> linear_scale((0, 10), (100, 200))(5)
        150.0
    """
    (d0, d1), (p0, p1) = domain, pixels
    if d1 == d0:
        return lambda _: (p0 + p1) / 2
    return lambda v: p0 + (v - d0) * (p1 - p0) / (d1 - d0)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering ``[low, high]``.

    Examples:
        >>> nice_ticks(0.0, 0.93)
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("ticks need finite bounds")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step)
    stop = math.ceil(high / step)
    return [round(k * step, 12) for k in range(start, stop + 1)]


def format_tick(value: float) -> str:
    """A short label for a tick value (no float noise such as 0.6000000000000001)."""
    return f"{value:.6g}" if abs(value) >= 1e-12 else "0"


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    label = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
            f'width="{width:g}" height="{height:g}" role="img" aria-label="{label}" {FONT}>'
            f"<title>{label}</title>{''.join(body)}</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
            f"{escape(text)}</text>")


def _runs(points: Sequence[Point], key: Callable[[Point], bool]) -> list[list[Point]]:
    """Consecutive points where ``key`` holds (a ``None`` breaks the run)."""
    runs: list[list[Point]] = [[]]
    for p in points:
        if key(p):
            runs[-1].append(p)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _bounds(series: Sequence[Series]) -> tuple[tuple[float, float], tuple[float, float]] | None:
    xs = [p.x for s in series for p in s.points if p.y is not None]
    ys = [v for s in series for p in s.points for v in (p.y, p.low, p.high) if v is not None]
    if not xs:
        return None
    return (min(xs), max(xs)), (min(ys), max(ys))


def line_chart(series: Sequence[Series], *, title: str, x_label: Callable[[float], str],
               y_title: str = "", width: int = 720, height: int = 300) -> str:
    """Lines with shaded bands (e.g. cumulative mean and CI per arm over time).

    Args:
        series: The lines; points with ``y`` None are gaps, bands need ``low`` and ``high``.
        title: Accessible title of the chart.
        x_label: Formats an x value for the axis (e.g. a timestamp as a date).
        y_title: Label of the y axis.
        width: Pixels.
        height: Pixels.

    Returns:
        An ``<svg>`` element.
    """
    box = Box(64, 16, width - 64 - 16, height - 16 - 56)
    bounds = _bounds(series)
    if bounds is None:
        return _svg(width, height, title, [_text(width / 2, height / 2, "No data yet",
                                                 "middle", ' class="empty"')])
    (x0, x1), (y0, y1) = bounds
    ticks = nice_ticks(y0, y1)
    sx = linear_scale((x0, x1), (box.left, box.right))
    sy = linear_scale((ticks[0], ticks[-1]), (box.bottom, box.top))
    body = _y_axis(box, ticks, sy, y_title)
    body += _x_axis(box, sorted({p.x for s in series for p in s.points}), sx, x_label)
    for index, s in enumerate(series):
        body += _series(s, PALETTE[index % len(PALETTE)], sx, sy)
    body += _legend(series, box.left, height - 10)
    return _svg(width, height, title, body)


def _y_axis(box: Box, ticks: list[float], sy: Callable[[float], float],
            title: str) -> list[str]:
    out = [f'<line x1="{box.left}" y1="{box.top}" x2="{box.left}" y2="{box.bottom}" '
           'stroke="#888"/>']
    for t in ticks:
        y = sy(t)
        out.append(f'<line x1="{box.left}" y1="{y:.1f}" x2="{box.right}" y2="{y:.1f}" '
                   'stroke="#e4e4e4"/>')
        out.append(_text(box.left - 6, y + 4, format_tick(t), "end"))
    if title:
        out.append(_text(14, box.top + box.height / 2, title, "middle",
                         f' transform="rotate(-90 14 {box.top + box.height / 2:.1f})"'))
    return out


def _x_axis(box: Box, xs: list[float], sx: Callable[[float], float],
            label: Callable[[float], str], most: int = 6) -> list[str]:
    out = [f'<line x1="{box.left}" y1="{box.bottom}" x2="{box.right}" y2="{box.bottom}" '
           'stroke="#888"/>']
    step = max(1, math.ceil(len(xs) / most))
    for x in xs[::step]:
        out.append(_text(sx(x), box.bottom + 16, label(x), "middle"))
    return out


def _series(s: Series, color: str, sx: Callable[[float], float],
            sy: Callable[[float], float]) -> list[str]:
    def xy(x: float, y: float | None) -> str:
        return f"{sx(x):.1f},{sy(y or 0.0):.1f}"  # callers pass runs without None

    out = []
    for run in _runs(s.points, lambda p: p.low is not None and p.high is not None):
        edge = [xy(p.x, p.high) for p in run] + [xy(p.x, p.low) for p in reversed(run)]
        out.append(f'<polygon class="band" points="{" ".join(edge)}" fill="{color}" '
                   'fill-opacity="0.15" stroke="none"/>')
    for run in _runs(s.points, lambda p: p.y is not None):
        if len(run) == 1:
            cx, cy = xy(run[0].x, run[0].y).split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
            continue
        coords = " ".join(xy(p.x, p.y) for p in run)
        out.append(f'<polyline class="line" points="{coords}" fill="none" '
                   f'stroke="{color}" stroke-width="2"/>')
    return out


def _legend(series: Sequence[Series], left: float, y: float) -> list[str]:
    out, x = [], left
    for index, s in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" '
                   f'fill="{color}"/>')
        out.append(_text(x + 14, y, s.name))
        x += 24 + 7 * len(s.name)
    return out


def forest_plot(rows: Sequence[ForestRow], *, title: str,
                value_label: Callable[[float], str], width: int = 760,
                row_height: int = 28) -> str:
    """Estimates with interval whiskers on a shared axis and a line at zero (no effect).

    Args:
        rows: One per comparison; rows without an estimate show ``n/a``.
        title: Accessible title.
        value_label: Formats an estimate or bound (e.g. as a percentage).
        width: Pixels.
        row_height: Pixels per row.

    Returns:
        An ``<svg>`` element.
    """
    height = 40 + row_height * max(len(rows), 1)
    box = Box(170, 10, width - 170 - 230, height - 40)
    values = [v for r in rows for v in (r.estimate, r.low, r.high) if v is not None]
    if not values:
        return _svg(width, height, title, [_text(width / 2, height / 2, "No estimates yet",
                                                 "middle", ' class="empty"')])
    ticks = nice_ticks(min(*values, 0.0), max(*values, 0.0))
    sx = linear_scale((ticks[0], ticks[-1]), (box.left, box.right))
    body = [f'<line class="zero" x1="{sx(0):.1f}" y1="{box.top}" x2="{sx(0):.1f}" '
            f'y2="{box.bottom}" stroke="#555" stroke-dasharray="4 3"/>']
    for t in ticks:
        body.append(_text(sx(t), box.bottom + 16, value_label(t), "middle"))
    for index, row in enumerate(rows):
        body += _forest_row(row, box.top + row_height * (index + 0.5), sx, box, value_label)
    return _svg(width, height, title, body)


def _forest_row(row: ForestRow, y: float, sx: Callable[[float], float], box: Box,
                label: Callable[[float], str]) -> list[str]:
    weight = ' font-weight="bold"' if row.emphasis else ""
    out = [_text(box.left - 10, y + 4, row.label, "end", weight)]
    if row.estimate is None:
        return [*out, _text(box.right + 10, y + 4, "n/a")]
    color = PALETTE[0] if row.emphasis else "#555"
    if row.low is not None and row.high is not None:
        out.append(f'<line class="ci" x1="{sx(row.low):.1f}" y1="{y:.1f}" '
                   f'x2="{sx(row.high):.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2"/>')
        text = f"{label(row.estimate)} [{label(row.low)}, {label(row.high)}]"
    else:
        text = f"{label(row.estimate)} (no interval)"
    out.append(f'<rect class="estimate" x="{sx(row.estimate) - 4:.1f}" y="{y - 4:.1f}" '
               f'width="8" height="8" fill="{color}"/>')
    return [*out, _text(box.right + 10, y + 4, text)]
