"""The drift report: context features' PSI, reward-rate and model-quality drift.

Between a reference window and a recent one (``experiments.drift.options``):

- per context feature, the population stability index over a bounded, evenly spread
  sample of each window's decisions (``experiments.drift.psi``); ``alert`` when it
  exceeds the threshold (default 0.25);
- reward-rate drift: the reward per decision of each window as a ratio of per-unit sums,
  recent minus reference with the delta-method variance and Welch's t-test counted in
  units (``experiments.abstats.ratio_difference``); ``alert`` when ``p < alpha``;
- model-quality drift, on the bandit arm's online decisions (those its model chose):
  its reward per decision (its on-policy value: the IPS estimate of the logging policy
  on its own decisions, every importance weight 1) and its mean logged propensity of the
  chosen action (how sure the policy is of what it serves), tested the same way.

Reward and model quality count decisions whose reward window has closed by the report's
clock (an open window's reward is not final); the PSI counts every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from experiments import clock
from experiments.abstats import RatioStats, ratio_difference
from experiments.drift import sql
from experiments.drift.features import FeatureDrift, feature_drift, feature_names, flatten
from experiments.drift.options import DriftOptions
from experiments.drift.psi import SHARE_FLOOR
from experiments.models import Decision, Experiment
from experiments.reports.sql import Scope, tune

BANDIT_ARM = "bandit"


@dataclass(frozen=True, slots=True)
class Sampled:
    """One window's decisions counted and the flattened contexts sampled."""

    decisions: int
    rows: list[dict[str, Any]]


def build_drift(session: Session, experiment: Experiment, options: DriftOptions,
                now: float | None = None) -> dict[str, Any]:
    """The drift report of ``experiment`` as a JSON-ready mapping.

    Args:
        session: A database session (read only).
        experiment: The experiment (its reward default and alpha).
        options: The windows, threshold, alpha and sample size.
        now: The report's clock (tests pin it); defaults to the wall clock.

    Returns:
        ``experiment``, ``generated_at``, ``reference``, ``recent``, ``method``,
        ``features``, ``features_truncated``, ``reward``, ``model_quality`` and ``alert``
        (any of them alerting).
    """
    now = clock.now() if now is None else now
    config = experiment.settings
    alpha = options.alpha if options.alpha is not None else config.alpha
    tune(session)
    windows = {"reference": options.reference, "recent": options.recent}
    scope = Scope(experiment.id, float(config.reward.default), now)
    sampled = {name: _sample(session, scope, w, options.sample) for name, w in windows.items()}
    _drop(sampled, _not_compared(config.unit_field, config.declared_types))
    features, truncated = _features(sampled, options.threshold)
    closed = Scope(experiment.id, float(config.reward.default), now, include_open=False)
    reward = _compare(session, closed, options, closed.reward(), (), alpha)
    quality = _model_quality(session, closed, options, alpha)
    return {"experiment": config.key, "generated_at": clock.iso(now),
            **{name: _window(w, sampled[name], options.sample) for name, w in windows.items()},
            "method": _method(options.threshold, alpha),
            "features": features, "features_truncated": truncated, "reward": reward,
            "model_quality": quality,
            "alert": (any(f["alert"] for f in features) or reward["alert"]
                      or quality["alert"])}


def _features(sampled: dict[str, Sampled], threshold: float
              ) -> tuple[list[dict[str, Any]], bool]:
    """Each compared feature's row, and whether features were left out (too many)."""
    ref, rec = sampled["reference"].rows, sampled["recent"].rows
    names, truncated = feature_names(ref, rec)
    return [_feature(feature_drift(n, ref, rec), threshold, sampled) for n in names], truncated


def _model_quality(session: Session, closed: Scope, options: DriftOptions, alpha: float
                   ) -> dict[str, Any]:
    """The bandit arm's online decisions: reward per decision (its on-policy IPS value)
    and mean chosen-action propensity, each recent versus reference."""
    online = (Decision.arm == BANDIT_ARM, Decision.phase == "online")
    quality = {"value": _compare(session, closed, options, closed.reward(), online, alpha),
               "propensity": _compare(session, closed, options, Decision.propensity,
                                      online, alpha)}
    return {**quality, "alert": any(q["alert"] for q in quality.values())}


def _sample(session: Session, scope: Scope, window: sql.Window, limit: int) -> Sampled:
    total = sql.count(session, scope, window)
    contexts = sql.sample_contexts(session, scope, window, total, limit) if total else []
    return Sampled(total, [flatten(c) for c in contexts])


def _not_compared(unit_field: str | None, declared: Mapping[str, str]) -> set[str]:
    """Fields whose values are not a population: the unit field (a customer's id: new
    customers are not a shift) and free text (``text`` and ``embedding`` fields, whose
    every value is new; VW sees their words or numbers, not the string)."""
    found = {path for path, kind in declared.items() if kind in ("text", "embedding")}
    return found | ({unit_field} if unit_field else set())


def _drop(sampled: dict[str, Sampled], names: set[str]) -> None:
    for window in sampled.values():
        for row in window.rows:
            for name in names:
                row.pop(name, None)


def _window(window: sql.Window, sampled: Sampled, limit: int) -> dict[str, Any]:
    return {"since": clock.iso(window.since), "until": clock.iso(window.until),
            "decisions": sampled.decisions, "sampled": len(sampled.rows),
            "sample_limit": limit}


def _feature(drift: FeatureDrift, threshold: float, sampled: dict[str, Sampled]
             ) -> dict[str, Any]:
    """A feature's row; no PSI (reason ``empty``) when a window has no decisions."""
    empty = not (sampled["reference"].rows and sampled["recent"].rows)
    psi = None if empty else round(drift.psi, 6)
    return {"feature": drift.feature, "kind": drift.kind, "psi": psi,
            "alert": psi is not None and psi > threshold,
            "reason": "empty" if empty else None,
            "bins": [{"bin": b.label, "reference": b.reference, "recent": b.recent}
                     for b in drift.bins]}


def _compare(session: Session, scope: Scope, options: DriftOptions, value: Any,
             only: Any, alpha: float) -> dict[str, Any]:
    """Recent minus reference of ``value`` per decision (ratio of per-unit sums)."""
    ref = sql.unit_sums(session, scope, options.reference, value, only)
    rec = sql.unit_sums(session, scope, options.recent, value, only)
    d = ratio_difference(ref, rec, alpha=alpha)
    return {"reference": _side(ref), "recent": _side(rec), "diff": d.diff,
            "ci_low": d.ci.lower if d.ci else None, "ci_high": d.ci.upper if d.ci else None,
            "p_value": d.p_value, "alert": d.p_value is not None and d.p_value < alpha,
            "reason": d.reason.value if d.reason else None}


def _side(stats: RatioStats) -> dict[str, Any]:
    return {"units": stats.n, "decisions": int(stats.decisions),
            "mean": stats.mean if stats.decisions else None}


def _method(threshold: float, alpha: float) -> dict[str, Any]:
    return {"psi": "population stability index, sum (a - e) ln(a / e) over bins",
            "psi_threshold": threshold, "psi_usual_thresholds": {"moderate": 0.1,
                                                                  "major": 0.25},
            "empty_bin_share_floor": SHARE_FLOOR,
            "numeric_bins": "the reference window's deciles",
            "categorical_bins": "the 20 most frequent values, the rest pooled in (other)",
            "difference": "ratio of per-unit sums, delta-method variance, Welch t-test",
            "alpha": alpha,
            "counted": "PSI: every activated decision (sampled); reward and model quality: "
                       "decisions whose reward window has closed"}
