"""The report's charts: its JSON turned into :mod:`app.web.svg` series and rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from app.web.formatting import pct, when
from app.web.svg import ForestRow, Point, Series, forest_plot, line_chart


def ci_bar(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], width: int = 140,
           height: int = 14) -> Markup:
    """A small inline bar: the arm's interval and mean on the scale shared by ``rows``."""
    lows = [r["ci_low"] for r in rows if r.get("ci_low") is not None]
    highs = [r["ci_high"] for r in rows if r.get("ci_high") is not None]
    if row.get("ci_low") is None or row.get("mean") is None or not lows:
        return Markup("")
    lo, hi = min(lows), max(highs)
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 4 + (v - lo) / span * (width - 8)

    mid = height / 2
    return Markup(
        f'<svg class="ci-bar" width="{width}" height="{height}" role="img" '
        f'aria-label="interval {row["ci_low"]:.4g} to {row["ci_high"]:.4g}">'
        f'<line x1="{x(row["ci_low"]):.1f}" x2="{x(row["ci_high"]):.1f}" y1="{mid}" '
        f'y2="{mid}" stroke="#2563eb" stroke-width="3"/>'
        f'<circle cx="{x(row["mean"]):.1f}" cy="{mid}" r="3.5" fill="#1e3a8a"/></svg>')


def timeline_svg(report: Mapping[str, Any]) -> str:
    """Cumulative mean reward per arm with its confidence band, per look."""
    timeline = report["timeline"]
    series = [Series(arm, tuple(Point(p["ts"], p["mean"], p["ci_low"], p["ci_high"])
                                for p in points))
              for arm, points in timeline["series"].items()]
    level = round((1 - report["alpha"]) * 100)
    return line_chart(series, title=f"Cumulative reward per decision per arm ({level}% CI "
                      f"bands over units), by {timeline['unit']}",
                      x_label=lambda ts: when(ts, timeline["unit"]),
                      y_title="cumulative mean reward")


def forest_svg(report: Mapping[str, Any]) -> str:
    """Relative lift of every comparison with its delta-method interval."""
    rows = [ForestRow(f"{c['arm']} \u00b7 {c['metric']}", c["lift"], c["lift_ci_low"],
                      c["lift_ci_high"], emphasis=c["metric"] == "reward")
            for c in report["comparisons"]]
    level = round((1 - report["alpha"]) * 100)
    return forest_plot(rows, title=f"Relative lift versus {report['control']} "
                       f"({level}% CI, fixed-horizon)", value_label=pct)
