"""Offline evaluations in the shapes of Personalizer's versioned API (`v1.0` to
`v1.1-preview.3`), which `@azure-rest/ai-personalizer` (the JavaScript client) speaks.

That contract differs from 2022-09-01-preview's (`evaluations.py`): the service names the
evaluation (`POST evaluations` answers 201 with a `Location`), the listing is a bare array,
statuses are lower case (`pending`, `completed`, `failed`, `timeout`), and each policy's
results are `policyResults[].summary` (one entry per interval) and `totalSummary`, whose
`averageReward` and `confidenceInterval` (a half-width, Personalizer's "Gaussian confidence
interval") are the same doubly robust estimate as 2022's `expectedReward`. `totalSummary`
also carries the IPS sums Personalizer reported (`ipsEstimatorNumerator` / `Denominator`,
`snipsEstimatorDenominator`); the per-interval entries carry the DR estimate only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.personalizer import jobviews
from app.personalizer.configuration import format_duration
from experiments import clock
from experiments.models import OfflineJob
from experiments.offline import evaluation, jobs

STATUS = {"Running": "pending", "Succeeded": "completed", "Failed": "failed",
          "Timeout": "timeout"}
# (start, end, intervalInMinutes, window): the shape of `summary`, as in `evaluations.py`.
Series = tuple[float, float, int, str]


def document(job: OfflineJob, series: Series | None = None) -> dict[str, Any]:
    """The `Evaluation` definition; `policyResults` once the job is done and `series` given."""
    out = {**jobviews.header(job), "jobId": job.job_id, "status": STATUS.get(
        jobs.status(job), "failed"), "evaluationType": "Manual"}
    if job.result is None or series is None:
        return out
    out["optimalPolicy"] = job.result["optimalPolicy"]
    out["policyResults"] = [_policy(entry, series) for entry in job.result["policies"]]
    return out


def _half_width(interval: list[float | None]) -> float | None:
    low, high = interval
    return None if low is None or high is None else (high - low) / 2


def _policy(entry: Mapping[str, Any], series: Series) -> dict[str, Any]:
    start, end, interval, window = series
    width = format_duration(interval * 60.0)
    points = [{"timeStamp": clock.iso(p["timeStamp"]), "aggregateTimeWindow": width,
               "averageReward": p["expectedReward"],
               "confidenceInterval": _half_width(p["confidenceInterval"])}
              for p in evaluation.timeseries(entry, start, end, interval, window)]
    return {"name": entry["name"], "arguments": entry["arguments"],
            "policySource": entry["policySource"], "candidate": entry["candidate"],
            "summary": points, "totalSummary": _total(entry, start, end)}


def _total(entry: Mapping[str, Any], start: float, end: float) -> dict[str, Any]:
    estimates = entry["estimates"]
    whole = evaluation.summary(entry)
    n, ips = estimates.get("n") or 0, estimates["estimators"].get("ips") or {}
    # IPS = numerator / denominator and SNIPS = numerator / snipsDenominator, as
    # Personalizer's clients computed them: the sum of weighted rewards, n, the sum of weights.
    numerator = None if ips.get("value") is None else ips["value"] * n
    weights = estimates.get("mean_weight")
    return {"timeStamp": clock.iso(end), "aggregateTimeWindow": format_duration(end - start),
            "averageReward": whole["expectedReward"],
            "confidenceInterval": _half_width(whole["confidenceInterval"]),
            "ipsEstimatorNumerator": numerator, "ipsEstimatorDenominator": n,
            "snipsEstimatorDenominator": None if weights is None else weights * n}
