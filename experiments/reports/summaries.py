"""Per-arm rows of the report: mean with confidence interval, and the cumulative curve."""

from __future__ import annotations

from typing import Any

from experiments import clock
from experiments.abstats import RatioStats, summarize
from experiments.reports.metrics import Looks, Metric


def arm_row(stats: RatioStats, alpha: float, binary: bool) -> dict[str, Any]:
    """``n`` (decisions), ``units``, ``mean`` per decision and its interval.

    The interval is the t interval over units with the delta-method variance; where every
    unit has one decision it is the decision-level one (Wilson for a 0/1 metric).
    ``rate`` repeats the mean for a 0/1 metric and is ``None`` otherwise; ``reason``
    names degenerate data (``empty``, ``single_observation``, ``zero_variance``).

    Examples:
        >>> arm_row(RatioStats.from_units([1, 1, 1, 1], [1.0, 0, 0, 0]), 0.05, True)["rate"]
        0.25
    """
    if stats.one_per_unit:
        s = summarize(stats.as_mean_stats(), alpha=alpha, binary=binary)
    else:
        s = summarize(stats, alpha=alpha)
    return {"n": int(stats.decisions), "units": stats.n, "mean": s.mean,
            "ci_low": s.ci.lower if s.ci else None, "ci_high": s.ci.upper if s.ci else None,
            "rate": s.mean if binary else None,
            "method": s.method if stats.one_per_unit else "t_delta",
            "reason": s.reason and str(s.reason), "total": stats.sum_y,
            "decisions_per_unit": stats.mean_x if stats.n else None}


def timeline(metric: Metric, looks: Looks, alpha: float) -> dict[str, Any]:
    """Cumulative mean and interval of every arm at the end of each look (for the chart)."""
    series = {}
    for arm, cumulative in metric.looks.items():
        points = []
        for bucket, stats in zip(looks.buckets, cumulative, strict=True):
            row = arm_row(stats, alpha, metric.binary)
            end = looks.end(bucket)
            points.append({"ts": end, "time": clock.iso(end), "n": row["n"],
                           "units": row["units"], "mean": row["mean"],
                           "ci_low": row["ci_low"], "ci_high": row["ci_high"]})
        series[arm] = points
    return {"metric": metric.name, "unit": looks.unit, "cumulative": True, "series": series,
            "bucket_seconds": looks.seconds}
