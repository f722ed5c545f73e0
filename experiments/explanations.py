"""Explanations of logged decisions, recomputed with the model version that decided.

A bandit-arm decision records the snapshot that served it (`model_version`, 0 before the
first snapshot) and the context actually scored (PII-guarded, profile merged). Loading
that snapshot (`PolicyCache.frozen`, a small per-worker LRU) and scoring the logged
example again gives the same weights the decision saw (`bandits.explain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.orm import Session

from bandits.policy import VWPolicy
from experiments.models import Experiment
from experiments.policies import PolicyCache


def for_decision(session: Session, policies: PolicyCache, experiment: Experiment,
                 decision: Mapping[str, Any]) -> dict[str, Any] | None:
    """`decision` as `decision_log.serialize` gives it; None for other arms than bandit."""
    if decision["arm"] != "bandit":
        return None
    version = decision["model_version"] or 0
    policy = (policies.frozen(session, experiment, version) if version
              else VWPolicy(experiment.settings.learner.vw_arguments))
    pairs = [(a["id"], a["features"]) for a in decision["actions"]]
    types = experiment.settings.types
    return cast(dict[str, Any], policy.explain(decision["context"], pairs,
                                               decision["chosen_index"], types))
