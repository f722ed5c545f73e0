"""The fairness report's JSON: per attribute value and arm, reward and action exposure with
tests of disparity, and the counterfactual audit of the current model.

Reward is analysed per unit (the unit of randomisation): a unit belongs to the value of
its first decision in the window, as the A/B report's segments. Exposure counts decisions
by their own value. ``(missing)`` (no value) is shown but left out of the tests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from experiments import clock
from experiments.abstats import RatioStats
from experiments.fairness import audit, stats
from experiments.fairness.options import FairnessOptions
from experiments.models import Experiment
from experiments.policies import PolicyCache, latest_version
from experiments.reports.ab import arm_order
from experiments.reports.segments import action_shares
from experiments.reports.sql import MISSING, OTHER, Scope, segment_actions, tune
from experiments.reports.summaries import arm_row
from experiments.reports.units import REWARD_COLUMN, Request, unit_cells


def build_fairness(session: Session, experiment: Experiment, policies: PolicyCache,
                   options: FairnessOptions, since: float, until: float) -> dict[str, Any]:
    """The report of decisions logged in ``[since, until]`` (see docs/fairness.md)."""
    config = experiment.settings
    alpha = options.alpha if options.alpha is not None else config.alpha
    scope = Scope(experiment.id, float(config.reward.default), until, since=since)
    tune(session)
    values, by_action = segment_actions(session, scope, options.path, options.top)
    cells = unit_cells(session, scope, Request(by_hour=False,
                                               segment=(options.path, values)))
    rewards: dict[str, dict[str, RatioStats]] = {}
    binary = bool(cells)
    for (arm, label), cell in cells.items():
        rewards.setdefault(arm, {})[label] = cell.metrics[REWARD_COLUMN].stats()
        binary = binary and cell.decision_moments[REWARD_COLUMN].binary
    seen = {label for _, label in cells} | {label for label, _, _ in by_action}
    labels = [v for v in [*values, OTHER, MISSING] if v in seen]
    arms = arm_order(config.arms, {a for a, _ in cells} | {a for _, a, _ in by_action})
    warnings: list[dict[str, str]] = []
    body = {arm: _arm(rewards.get(arm, {}), by_action, arm, labels, alpha, binary, warnings)
            for arm in arms}
    counterfactual, reason = _counterfactual(session, experiment, policies, scope, options,
                                             values, alpha, warnings)
    _missing_warning(by_action, warnings)
    return {"experiment": experiment.key, "attribute": options.attribute,
            "since": clock.iso(since), "until": clock.iso(until), "alpha": alpha,
            "top": options.top, "generated_at": clock.iso(clock.now()), "binary": binary,
            "values": labels, "arms": body, "counterfactual": counterfactual,
            "counterfactual_reason": reason, "warnings": warnings}



def _arm(rewards: dict[str, RatioStats], by_action: dict[tuple[str, str, str], int],
         arm: str, labels: list[str], alpha: float, binary: bool,
         warnings: list[dict[str, str]]) -> dict[str, Any]:
    """One arm's rows per value and its two tests."""
    exposure = {(v, a): n for (v, arm_, a), n in by_action.items() if arm_ == arm}
    rows = []
    for label in labels:
        row = arm_row(rewards.get(label, RatioStats.empty()), alpha, binary)
        shares = action_shares({(label, a): n for (v, a), n in exposure.items() if v == label})
        rows.append({"value": label, **row, "decisions": sum(
            n for (v, _), n in exposure.items() if v == label),
            "exposure": shares.get(label, {})})
    tested = {v: s for v, s in rewards.items() if v != MISSING}
    contrasts = stats.reward_contrasts(tested, alpha) if len(tested) > 1 else []
    units = sum(rewards.values(), RatioStats.empty())
    test = stats.exposure_test({k: n for k, n in exposure.items() if k[0] != MISSING},
                               stats.design_effect(units))
    if test.sparse:
        warnings.append({"code": "sparse_exposure", "message": (
            f"arm {arm}: some expected count of value x action is below "
            f"{stats.MIN_EXPECTED:g}; the chi-square p-value is approximate (use a smaller "
            "top, or a longer window)")})
    return {"values": rows,
            "reward_disparity": {"method": "welch_delta_value_vs_rest", "adjustment": "holm",
                                 "contrasts": [_contrast(c, alpha) for c in contrasts],
                                 "reason": None if contrasts else "single_value"},
            "exposure_disparity": _independence(test, alpha)}


def _contrast(c: stats.Contrast, alpha: float) -> dict[str, Any]:
    return {"value": c.value, "diff": c.diff, "ci_low": c.ci.lower if c.ci else None,
            "ci_high": c.ci.upper if c.ci else None, "p_value": c.p_value,
            "p_value_adjusted": c.p_value_adjusted,
            "significant": c.p_value_adjusted is not None and c.p_value_adjusted < alpha,
            "reason": c.reason}


def _independence(t: stats.Independence, alpha: float) -> dict[str, Any]:
    return {"method": "chi2_independence", "chi2": t.chi2, "df": t.df, "p_value": t.p_value,
            "design_effect": t.design_effect, "p_value_adjusted": t.p_value_adjusted,
            "significant": t.p_value_adjusted is not None and t.p_value_adjusted < alpha,
            "sparse": t.sparse, "reason": t.reason}


def _counterfactual(session: Session, experiment: Experiment, policies: PolicyCache,
                    scope: Scope, options: FairnessOptions, values: list[str], alpha: float,
                    warnings: list[dict[str, str]]) -> tuple[dict[str, Any] | None, str | None]:
    """The audit's section, or ``None`` and why (no model, fewer than two values)."""
    arguments = experiment.settings.learner.vw_arguments
    version = latest_version(session, experiment.id, arguments)
    if not version:
        warnings.append({"code": "no_model", "message": "the bandit has no model snapshot "
                         "yet: no counterfactual audit"})
        return None, "no_model"
    if len(values) < 2:
        return None, "single_value"
    # The version the bandit serves, as an instance of its own: the audit's thousands of
    # pmf calls must not take turns with rank on the serving model's lock.
    policy = policies.frozen(session, experiment, version)
    samples = audit.sample_contexts(session, scope, options.path, values, options.samples)
    found = audit.run_audit(policy, experiment.settings.types, samples, options.path,
                            values, alpha)
    if found.skipped:
        warnings.append({"code": "audit_skipped", "message": (
            f"{found.skipped} sampled contexts could not be scored by the current model "
            "and were left out of the audit")})
    return {"model_version": policy.version, "method": "total_variation",
            "samples": len(samples), "skipped": found.skipped,
            **_distance(found.overall),
            "pairs": [{"from": a, "to": b, **_distance(d)}
                      for (a, b), d in found.pairs.items()]}, None


def _distance(d: stats.MeanDistance) -> dict[str, Any]:
    return {"contexts": d.contexts, "units": d.units, "mean_tv": d.mean,
            "ci_low": d.ci.lower if d.ci else None, "ci_high": d.ci.upper if d.ci else None,
            "reason": d.reason}


def _missing_warning(by_action: dict[tuple[str, str, str], int],
                     warnings: list[dict[str, str]]) -> None:
    total = sum(by_action.values())
    missing = sum(n for (v, _, _), n in by_action.items() if v == MISSING)
    if total and missing:
        warnings.append({"code": "attribute_missing", "message": (
            f"{missing} of {total} decisions have no value of the attribute; they are "
            "shown as (missing) and left out of the tests")})
