"""The A/B report as CSV: one table, one row per arm, comparison and segment cell."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

COLUMNS = ["section", "segment", "arm", "metric", "n", "units", "pending", "mean",
           "ci_low", "ci_high", "control", "diff", "lift", "lift_ci_low", "lift_ci_high",
           "p_value", "p_value_holm", "significant", "p_value_sequential",
           "ci_sequential_low", "ci_sequential_high", "method", "reason",
           "p_value_adjusted", "adjustment", "decisions_without_unit"]


def to_csv(report: Mapping[str, Any]) -> str:
    """CSV text of a report from :func:`experiments.reports.build_report`.

    ``section`` is ``arm`` (reward per arm), ``arm_metric`` (an event metric of an arm),
    ``comparison``, ``segment_arm`` or ``segment_comparison``; empty cells are blank.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(report))
    return out.getvalue()


def _rows(report: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for arm, row in report["arms"].items():
        yield {**row, "section": "arm", "arm": arm, "metric": "reward"}
        for metric, m in row["metrics"].items():
            yield {**m, "section": "arm_metric", "arm": arm, "metric": metric}
    for c in report["comparisons"]:
        yield {**c, "section": "comparison"}
    for seg in (report.get("segments") or {}).get("values", []):
        for arm, row in seg["arms"].items():
            yield {**row, "section": "segment_arm", "segment": seg["value"], "arm": arm,
                   "metric": "reward"}
        for c in seg["comparisons"]:
            yield {**c, "section": "segment_comparison", "segment": seg["value"]}
