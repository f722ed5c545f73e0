"""The report's charts: its JSON turned into :mod:`app.web.svg` series and rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.web.formatting import pct, when
from app.web.svg import ForestRow, Point, Series, forest_plot, line_chart


def timeline_svg(report: Mapping[str, Any]) -> str:
    """Cumulative mean reward per arm with its confidence band, per look."""
    timeline = report["timeline"]
    series = [Series(arm, tuple(Point(p["ts"], p["mean"], p["ci_low"], p["ci_high"])
                                for p in points))
              for arm, points in timeline["series"].items()]
    level = round((1 - report["alpha"]) * 100)
    return line_chart(series, title=f"Cumulative mean reward per arm ({level}% CI bands), "
                      f"by {timeline['unit']}",
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
