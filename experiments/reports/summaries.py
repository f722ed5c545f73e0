"""Per-arm rows of the report: mean with confidence interval, and the cumulative curve."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

from experiments import clock
from experiments.abstats import MeanStats, summarize
from experiments.reports.metrics import Looks, Metric


def arm_row(stats: MeanStats, units: int | None, alpha: float, binary: bool) -> dict[str, Any]:
    """``n``, ``units``, ``mean`` and its interval (t, or Wilson for a 0/1 metric).

    ``rate`` repeats the mean for a 0/1 metric and is ``None`` otherwise; ``reason``
    names degenerate data (``empty``, ``single_observation``, ``zero_variance``).

    Examples:
        >>> arm_row(MeanStats(4, 1.0, 1.0), 4, 0.05, True)["rate"]
        0.25
    """
    s = summarize(stats, alpha=alpha, binary=binary)
    return {"n": stats.n, "units": units, "mean": s.mean,
            "ci_low": s.ci.lower if s.ci else None, "ci_high": s.ci.upper if s.ci else None,
            "rate": s.mean if binary else None, "method": s.method,
            "reason": s.reason and str(s.reason), "total": stats.total}


def timeline(metric: Metric, looks: Looks, alpha: float) -> dict[str, Any]:
    """Cumulative mean and interval of every arm at the end of each look (for the chart)."""
    series = {}
    for arm, increments in metric.looks.items():
        points = []
        for bucket, stats in zip(looks.buckets, accumulate(increments), strict=True):
            row = arm_row(stats, None, alpha, metric.binary)
            end = looks.end(bucket)
            points.append({"ts": end, "time": clock.iso(end), "n": row["n"],
                           "mean": row["mean"], "ci_low": row["ci_low"],
                           "ci_high": row["ci_high"]})
        series[arm] = points
    return {"metric": metric.name, "unit": looks.unit, "cumulative": True, "series": series}
