"""The learning status of an experiment (``GET /v1/experiments/{key}/learning``).

Counters and progressive validation come from what the learner stored with its newest
snapshot; only the backlog (pending decisions, lag) is counted live, from the partial
index on unlearned decisions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from experiments import clock
from experiments.interval import Interval
from experiments.learning import join, snapshots
from experiments.learning.progress import Bucket, Progress, compare, snips
from experiments.models import Experiment, LearnerState
from experiments.verdict import from_interval

COMPARISON_METHOD = ("paired progressive IPS: mean of reward * (model - champion) "
                     "probability / logged propensity over the window, normal interval")


def learning_status(session: Session, experiment: Experiment) -> dict[str, Any]:
    """Model freshness, backlog, progressive validation and the learner's lease."""
    now = clock.now()
    model = snapshots.serving_info(session, experiment)
    backlog = join.backlog(session, experiment.id, now)
    metrics = (model.metrics if model else None) or {}
    saved = metrics.get("progressive")
    progress = Progress.from_json(saved, saved["window"]) if saved else Progress()
    recent = progress.recent()
    return {
        "model_version": model.version if model else None,
        "model_age_seconds": round(now - model.created_at, 3) if model else None,
        "examples_learned": model.examples_learned if model else 0,
        "lag_seconds": round(max(now - backlog.oldest_closes_at, 0.0), 3)
        if backlog.oldest_closes_at is not None else 0.0,
        "pending_decisions": backlog.pending,
        "in_window_decisions": backlog.in_window,
        "progressive": {"window": progress.window, **_progressive(recent)},
        "beats_champion": _comparison(recent, experiment.settings.alpha),
        "all_time": _progressive(progress.total),
        "apprentice": {"window": progress.window, **_apprentice(recent),
                       "all_time": _apprentice(progress.total)},
        "mode": experiment.settings.learner.mode,
        "arguments": experiment.settings.learner.vw_arguments,
        "learner": _learner(session.get(LearnerState, experiment.id), now),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _progressive(bucket: Bucket) -> dict[str, Any]:
    return {
        "bandit_mean_reward": _round(bucket.bandit.mean),
        "champion_mean_reward": _round(bucket.champion.mean),
        "bandit_decisions": bucket.bandit.n, "champion_decisions": bucket.champion.n,
        "decisions": bucket.n,
        "model_value_ips": _round(bucket.model_ips.mean),
        "model_value_snips": _round(snips(bucket)),
        "champion_value_ips": _round(bucket.champion_ips.mean),
    }


def _apprentice(bucket: Bucket) -> dict[str, Any]:
    """How often the bandit would have chosen the baseline (Personalizer's apprentice
    "imitation"): the mean, over champion decisions of a deterministic champion, of the
    model's probability of the champion's action before it learned that decision."""
    return {"decisions": bucket.match.n, "match_rate": _round(bucket.match.mean),
            "imitated_decisions": round(bucket.match.total, 3)}


def _comparison(bucket: Bucket, alpha: float) -> dict[str, Any]:
    result = compare(bucket, alpha)
    interval = None if result.ci_low is None or result.ci_high is None else \
        Interval(result.ci_low, result.ci_high, 1 - alpha)
    diff = result.diff if interval is not None else None
    decision = from_interval("progressive", "bandit", diff, interval)
    return {"verdict": result.verdict, "diff": _round(result.diff),
            "ci_low": _round(result.ci_low), "ci_high": _round(result.ci_high),
            "n": result.n, "alpha": alpha, "method": COMPARISON_METHOD,
            "decision": decision.verdict, "decision_reason": decision.reason}


def _learner(state: LearnerState | None, now: float) -> dict[str, Any]:
    if state is None:
        return {"active": False, "owner": None, "lease_expires_at": None}
    counters = state.counters or {}
    active = state.lease_owner is not None and (state.lease_expires_at or 0.0) > now
    return {"active": active, "owner": state.lease_owner if active else None,
            "lease_expires_at": clock.iso(state.lease_expires_at) if active else None,
            "examples_learned_total": counters.get("examples_learned_total", 0),
            "skipped_total": counters.get("skipped_total", 0),
            "snapshots": counters.get("snapshots", 0),
            "examples_per_second": counters.get("examples_per_second"),
            "last_snapshot_at": clock.iso(counters.get("last_commit_at")),
            "watermark": state.watermark}
