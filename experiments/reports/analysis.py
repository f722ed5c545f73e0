"""The experiment's analysis settings, and the report sections built on them: CUPED,
guardrails and the verdict's evidence.

Settings live in the experiment's ``analysis`` object (validated in
:mod:`experiments.validation`)::

    {"multiple_testing": "holm",            # or "bh"
     "cuped_covariate": "user.orders_90d",  # numeric context field, or null
     "guardrails": [{"metric": "event:refund", "margin": 0.01, "higher_is_better": false}],
     "per_unit_means": false}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

from experiments.abstats import RatioStats
from experiments.abstats.cuped import CovariateStats, cuped
from experiments.abstats.guardrail import non_inferiority
from experiments.abstats.multitest import Adjustment
from experiments.config import AnalysisSettings, Guardrail
from experiments.interval import Interval
from experiments.reports.comparisons import ArmComparison
from experiments.reports.metrics import Metric
from experiments.reports.units import Cell
from experiments.verdict import Decision, Evidence, decide_arms


def adjustment_of(settings: AnalysisSettings, override: str | None) -> Adjustment:
    """The report's multiple-testing correction: the query's, else the experiment's."""
    chosen = override or settings.multiple_testing
    return "bh" if chosen == "bh" else "holm"


def _sample(s: RatioStats) -> Any:
    return s.as_mean_stats() if s.one_per_unit else s


def guardrails(metrics: Sequence[Metric], specs: Sequence[Guardrail], control: str,
               alpha: float) -> list[dict[str, Any]]:
    """One row per (guardrail, treatment arm): the one-sided non-inferiority test."""
    by_name = {m.name: m for m in metrics}
    rows = []
    for spec in specs:
        metric = by_name.get(spec.metric)
        if metric is None:
            continue
        base = metric.totals[control]
        for arm, s in metric.totals.items():
            if arm == control:
                continue
            r = non_inferiority(_sample(base), _sample(s), spec.margin, alpha=alpha,
                                higher_is_better=spec.higher_is_better)
            rows.append({"metric": metric.name, "arm": arm, "margin": spec.margin,
                         "higher_is_better": spec.higher_is_better,
                         "diff": r.diff, "harm_ci_high": r.harm_upper,
                         "harm_ci_low": r.harm_lower, "ci_high": r.harm_upper,
                         "p_value": r.p_value, "holds": r.holds, "harmful": r.harmful})
    return rows


def cuped_rows(reward: Metric, cells: Mapping[tuple[str, int], Cell], covariate: str,
               control: str, alpha: float) -> dict[str, dict[str, Any]]:
    """CUPED-adjusted reward comparison per treatment arm (``{}`` when not computable)."""
    sums: dict[str, dict[str, float]] = {}
    for (arm, _), cell in cells.items():
        acc = sums.setdefault(arm, {})
        for k, v in (cell.covariate or {}).items():
            acc[k] = acc.get(k, 0.0) + v
    arms = {arm: CovariateStats(reward.totals[arm], s.get("sum_z", 0.0), s.get("sum_z2", 0.0),
                                s.get("sum_zx", 0.0), s.get("sum_zy", 0.0))
            for arm, s in sums.items() if arm in reward.totals}
    result = cuped(arms) if control in arms else None
    if result is None:
        return {}
    out = {}
    base = result.arms[control]
    z = float(stats.norm.isf(alpha / 2))
    for arm, adj in result.arms.items():
        if arm == control:
            continue
        diff = adj.mean - base.mean
        var = adj.mean_variance + base.mean_variance
        raw = reward.totals[arm].mean_variance + reward.totals[control].mean_variance
        se = math.sqrt(var)
        p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else None
        out[arm] = {"covariate": covariate, "diff": diff, "ci_low": diff - z * se,
                    "ci_high": diff + z * se, "p_value": p, "se": se,
                    "lift": diff / base.mean if base.mean else None,
                    "variance_reduction": 1 - var / raw if raw > 0 else None,
                    "theta": result.theta,
                    "units_without_covariate": int(sums[arm].get("missing", 0))}
    return out


def decision(rows: Sequence[Mapping[str, Any]], family: Sequence[ArmComparison],
             guard: Sequence[Mapping[str, Any]], srm: Mapping[str, Any],
             alpha: float, lift: float) -> Decision:
    """The report's verdict from the reward comparisons (rows in ``family`` order)."""
    invalid = None
    if srm.get("mismatch"):
        invalid = ("the units per arm do not match the configured traffic shares "
                   f"(sample-ratio mismatch, p = {srm.get('p_value') or 0:.2g})")
    evidence = []
    for row, c in zip(rows, family, strict=True):
        if c.metric != "reward":
            continue
        mine = [g for g in guard if g["arm"] == c.arm]
        interval = None
        if row["lift_ci_low"] is not None and row["lift_ci_high"] is not None:
            interval = Interval(row["lift_ci_low"], row["lift_ci_high"], 1 - alpha)
        q = row["p_value_sequential_adjusted"]
        planned = c.power.n_per_arm if c.power else None
        evidence.append(Evidence(
            "ab", c.arm, "reward", row["diff"], row["lift"], interval,
            q is not None and q < alpha, q, invalid,
            tuple(g["metric"] for g in mine if not g["holds"]),
            tuple(g["metric"] for g in mine if g["harmful"]),
            interval is not None and -lift < interval.lower and interval.upper < lift,
            planned is not None and min(c.units) >= planned,
            c.units_needed))
    if not evidence and invalid:
        evidence.append(Evidence("ab", None, invalid=invalid))
    return decide_arms(evidence)
