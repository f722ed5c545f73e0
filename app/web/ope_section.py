"""The analyst page's OPE section: the newest stored OPE report, with its chart.

The page never computes a report (that reads the whole log): it shows the newest one the
API or `tailor ope` stored, and says how to compute one when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.web.formatting import num
from app.web.svg import ForestRow, forest_plot
from experiments.errors import NotFound
from experiments.models import Experiment
from experiments.ope_report import stored


def context(session: Session, experiment: Experiment) -> dict[str, Any]:
    """Template variables ``ope`` (the stored report or None) and ``ope_svg``."""
    try:
        report = stored(session, experiment, "latest")
    except NotFound:
        return {"ope": None, "ope_svg": Markup("")}
    return {"ope": report, "ope_svg": Markup(chart_svg(report))}


def chart_svg(report: Mapping[str, Any]) -> str:
    """Each policy's value (the verdict's estimator) with its interval; champion first."""
    estimator = report.get("verdict_estimator", "dr")
    champion = report["champion"]
    rows = [_row(f"champion {champion['candidate']}", champion["estimators"][estimator],
                 emphasis=True)]
    on_policy = champion.get("on_policy") or {}
    if on_policy.get("value") is not None:
        rows.append(_row("champion, own traffic", on_policy, emphasis=True))
    rows += [_row(name, entry["estimators"][estimator])
             for name, entry in report["candidates"].items()]
    level = round(float(report.get("level", 0.95)) * 100)
    return forest_plot(rows, title=f"Estimated value per policy ({estimator.upper()}, "
                       f"{level}% {report.get('intervals', 'analytic')} intervals)",
                       value_label=num)


def _row(label: str, entry: Mapping[str, Any], emphasis: bool = False) -> ForestRow:
    return ForestRow(label[:40], entry.get("value"), entry.get("ci_low"), entry.get("ci_high"),
                     emphasis=emphasis)
