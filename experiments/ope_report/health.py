"""Bandit health checks: do logged choices follow the logged probabilities, and do rewards join?

Bandit SRM (per arm): if the logged pmfs are the ones actions were really drawn from, the
number of times action a was chosen has expectation ``E_a = sum_i pmf_i(a)`` over the
decisions that offered it. A chi-square goodness-of-fit test
(``scipy.stats.chisquare``) compares the observed counts with ``E_a``; actions with
``E_a < 5`` are merged into one bucket (added to the smallest other bucket if the merged
one is still below 5). A mismatch (p < 0.001) means propensities are logged wrongly, or
choices are made by something else (a cache, a client overriding the answer), and OPE on
these logs cannot be trusted. Decisions whose full pmf is unknown (imports that carry
only the chosen propensity) are left out and counted.

Reward join: the share of closed decisions that got no in-window reward (the default was
used), and the share of reward events that arrived after their window closed (stored,
flagged late, not counted). Rewards for unknown event ids (rejected) and repeated
idempotency keys (duplicates) are not stored, so they cannot be counted here; the service
counts both in ``/metrics`` (``tailor_rewards_total{outcome="rejected"|"duplicate"}``,
per process since it started).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from scipy import stats
from sqlalchemy.orm import Session

from experiments import pending
from experiments.final_decisions import Scope, scope_of
from experiments.models import Experiment, RewardEvent
from experiments.ope_report.scope import Chunk, chunks

THRESHOLD = 0.001
MIN_EXPECTED = 5.0
OTHER = "(other)"
SHOWN_ACTIONS = 10


@dataclass
class _ArmTally:
    n: int = 0
    unknown_pmf: int = 0
    expected: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    observed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class HealthTally:
    """Running counts for the health checks, fed chunk by chunk."""

    arms: dict[str, _ArmTally] = field(default_factory=lambda: defaultdict(_ArmTally))
    closed: int = 0
    defaulted: int = 0
    bounded: bool = False  # some reward was counted at ±VALUE_BOUND (value_bounds)

    def add(self, chunk: Chunk) -> None:
        self.closed += chunk.n
        self.bounded = self.bounded or chunk.bounded
        self.defaulted += int(np.count_nonzero(~chunk.rewarded))
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(chunk.arms, chunk.signatures, strict=True)):
            groups[key].append(i)
        logged = chunk.logged_matrix
        for (arm, _), members in groups.items():
            rows = np.array(members)
            self._group(self.arms[arm], chunk.actions[members[0]], logged[rows],
                        chunk.chosen[rows])

    @staticmethod
    def _group(tally: _ArmTally, actions: list[dict[str, Any]], logged: np.ndarray,
               chosen: np.ndarray) -> None:
        """Decisions of one arm that offered the same action list."""
        known = ~np.isnan(logged).any(axis=1)
        tally.n += int(known.shape[0])
        tally.unknown_pmf += int(np.count_nonzero(~known))
        if not known.any():
            return
        expected = logged[known].sum(axis=0)
        observed = np.bincount(chosen[known], minlength=logged.shape[1])
        for j, action in enumerate(actions):
            tally.expected[action["id"]] += float(expected[j])
            tally.observed[action["id"]] += int(observed[j])


def bandit_srm(tally: _ArmTally, threshold: float = THRESHOLD) -> dict[str, Any]:
    """The chi-square check of one arm."""
    checked = tally.n - tally.unknown_pmf
    result: dict[str, Any] = {"n": tally.n, "checked": checked,
                              "unknown_pmf": tally.unknown_pmf, "chi2": None,
                              "df": None, "p_value": None, "mismatch": False, "reason": None}
    buckets = _buckets(tally)
    if len(buckets) < 2:
        result["reason"] = "empty" if checked == 0 else "single_bucket"
    else:
        observed = np.array([o for _, o, _ in buckets], dtype=float)
        expected = np.array([e for _, _, e in buckets])
        expected *= observed.sum() / expected.sum()  # float drift of the pmf sums
        test = stats.chisquare(observed, expected)
        result.update(chi2=float(test.statistic), df=len(buckets) - 1,
                      p_value=float(test.pvalue), mismatch=bool(test.pvalue < threshold))
    result["actions"] = _largest_residuals(tally)
    return result


def _buckets(tally: _ArmTally) -> list[tuple[str, int, float]]:
    rows = [(a, tally.observed.get(a, 0), e) for a, e in tally.expected.items() if e > 0]
    big = sorted((r for r in rows if r[2] >= MIN_EXPECTED), key=lambda r: r[2])
    small = [r for r in rows if r[2] < MIN_EXPECTED]
    if small:
        merged = (OTHER, sum(r[1] for r in small), sum(r[2] for r in small))
        if merged[2] >= MIN_EXPECTED or not big:
            big.append(merged)
        else:
            first = big[0]
            big[0] = (f"{first[0]}+{OTHER}", first[1] + merged[1], first[2] + merged[2])
    return big


def _largest_residuals(tally: _ArmTally) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"id": a, "observed": tally.observed.get(a, 0), "expected": round(e, 6)}
        for a, e in tally.expected.items()]
    rows.sort(key=lambda r: -abs(r["observed"] - r["expected"]) / math.sqrt(
        max(r["expected"], 1e-9)))
    return rows[:SHOWN_ACTIONS]


def reward_join(session: Session, tally: HealthTally, experiment_id: int) -> dict[str, Any]:
    """Default-reward and late-reward rates."""
    events, late = session.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((RewardEvent.late, 1), else_=0)))
        .where(RewardEvent.experiment_id == experiment_id)).one()
    events, late = int(events or 0), int(late or 0)
    return {
        "closed_decisions": tally.closed,
        "default_reward_decisions": tally.defaulted,
        "default_reward_rate": tally.defaulted / tally.closed if tally.closed else None,
        "reward_events": events, "late_events": late,
        "late_rate": late / events if events else None,
        "orphan_rewards": None, "duplicate_rewards": None,
        "note": "rewards for unknown event ids and repeated idempotency keys are not "
                "stored; /metrics counts them (tailor_rewards_total{outcome=\"rejected\"|"
                "\"duplicate\"}, per process)",
    }


def summarize(session: Session, tally: HealthTally, experiment_id: int) -> dict[str, Any]:
    """The ``health`` document from a filled tally."""
    arms = {arm: bandit_srm(t) for arm, t in sorted(tally.arms.items())}
    warnings = [{"code": "bandit_srm", "message":
                 f"arm {arm!r}: chosen actions do not follow the logged probabilities "
                 f"(chi-square p = {r['p_value']:.2g}); check how propensities are logged"}
                for arm, r in arms.items() if r["mismatch"]]
    join = reward_join(session, tally, experiment_id)
    return {"bandit_srm": {"threshold": THRESHOLD, "arms": arms},
            "reward_join": join, "warnings": warnings}


def health_report(session: Session, experiment: Experiment, *,
                  scope: Scope | None = None) -> dict[str, Any]:
    """``GET /v1/experiments/{key}/reports/health``: both checks over the closed decisions."""
    scope = scope or scope_of(session, experiment)
    tally = HealthTally()
    for chunk in chunks(session, scope):
        tally.add(chunk)
    orphan = pending.orphans(session, experiment.id)
    return {"experiment": experiment.key, **summarize(session, tally, experiment.id),
            # Personalizer rewards/activations held for a decision that never came within
            # the window (orphans) or may still come (waiting): experiments.pending.
            "orphan_events": {"orphans": orphan.orphans, "waiting": orphan.waiting}}
