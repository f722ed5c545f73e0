"""Feature importance: how much the reward model's cross-validated fit worsens without a feature.

For every context feature (a top-level key, or a key of a one-level namespace such as
``user.segment``) and every action feature, the reward model of Tailor's OPE
(``experiments.ope.reward_model``: hashed context, action, and context x action-id
features) is fitted on two hash folds of the decisions, with and without that feature; a
feature's importance is the rise of the held-out mean squared error when it is removed
(permutation-free drop-column importance). ``score`` scales the rises so the most important
feature scores 1 (features whose removal does not worsen the fit score 0), as
Personalizer's feature scores did. Each feature also reports how many decisions carry it
(context) or how many offered actions do (action), and its number of distinct values.

Decisions beyond ``MAX_ROWS`` are sampled by a stable hash of their event id; features
beyond ``MAX_FEATURES`` (the least frequent) are counted but not scored.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from bandits.features import NO_TYPES, FeatureTypes
from experiments.final_decisions import count, scope_of
from experiments.models import Experiment
from experiments.ope.crossfit import hash_folds
from experiments.ope.featurize import HashingFeaturizer
from experiments.ope.reward_model import RewardModelConfig, fit_reward_model
from experiments.ope_report.scope import chunks

MAX_ROWS = 20_000
MAX_FEATURES = 40
MAX_DISTINCT = 10_000
N_BITS = 16
CONTEXT, ACTION = "context", "action"


@dataclass(frozen=True, order=True)
class Feature:
    """A feature: ``kind`` (context or action), its namespace (``""`` top level) and name."""

    kind: str
    namespace: str
    name: str


@dataclass
class Tally:
    """How often a feature occurs and its distinct values (capped)."""

    count: int = 0
    values: set[str] = field(default_factory=set)

    def add(self, value: Any) -> None:
        self.count += 1
        if len(self.values) < MAX_DISTINCT:
            self.values.add(json.dumps(value, sort_keys=True))


@dataclass(frozen=True)
class Logged:
    """Decisions to learn from: contexts, offered actions, chosen column, reward, event id."""

    contexts: list[dict[str, Any]]
    actions: list[list[dict[str, Any]]]
    chosen: np.ndarray
    rewards: np.ndarray
    event_ids: list[str]


def _leaves(obj: Mapping[str, Any], kind: str, ignore: frozenset[str]) -> list[tuple[Feature,
                                                                                   Any]]:
    found = []
    for key, value in obj.items():
        if key in ignore or value is None:
            continue
        if isinstance(value, Mapping):
            found += [(Feature(kind, key, inner), v) for inner, v in value.items()
                      if v is not None]
        else:
            found.append((Feature(kind, "", key), value))
    return found


def tally(log: Logged, ignore: frozenset[str] = frozenset()) -> dict[Feature, Tally]:
    """Every feature of the log with its count and distinct values."""
    found: dict[Feature, Tally] = {}
    for context, actions in zip(log.contexts, log.actions, strict=True):
        for feature, value in _leaves(context, CONTEXT, ignore):
            found.setdefault(feature, Tally()).add(value)
        for action in actions:
            for feature, value in _leaves(action.get("features") or {}, ACTION, frozenset()):
                found.setdefault(feature, Tally()).add(value)
    return found


def without(obj: Mapping[str, Any], feature: Feature | None) -> dict[str, Any]:
    """A copy of a feature dict without ``feature`` (unchanged when None or absent)."""
    if feature is None:
        return dict(obj)
    if not feature.namespace:
        return {k: v for k, v in obj.items() if k != feature.name}
    inner = obj.get(feature.namespace)
    if not isinstance(inner, Mapping):
        return dict(obj)
    return {**obj, feature.namespace: {k: v for k, v in inner.items() if k != feature.name}}


def held_out_error(log: Logged, drop: Feature | None, folds: np.ndarray,
                   ignore: frozenset[str] = frozenset(),
                   types: FeatureTypes = NO_TYPES) -> float:
    """Mean squared error of the 2-fold cross-fitted reward model (without ``drop``;
    `types`: the experiment's `feature_types`, read as rank reads them)."""
    featurizer = HashingFeaturizer(n_bits=N_BITS, ignore=ignore, types=types)
    context_drop = drop if drop is not None and drop.kind == CONTEXT else None
    action_drop = drop if drop is not None and drop.kind == ACTION else None
    contexts = featurizer.encode_contexts(without(c, context_drop) for c in log.contexts)
    table: dict[str, int] = {}
    entries: list[tuple[str, Mapping[str, Any]]] = []
    rows = []
    for actions, chosen in zip(log.actions, log.chosen, strict=True):
        action = actions[int(chosen)]
        features = without(action.get("features") or {}, action_drop)
        key = json.dumps([action["id"], features], sort_keys=True)
        if key not in table:
            table[key] = len(entries)
            entries.append((key, features))
        rows.append(table[key])
    encoded = featurizer.encode_actions(entries)
    design = featurizer.design(contexts, encoded, np.arange(len(rows)), np.array(rows))
    squared = np.zeros(len(rows))
    config = RewardModelConfig(kind="ridge" if _not_binary(log.rewards) else "auto")
    for fold in (0, 1):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        model = fit_reward_model(design[train], log.rewards[train], config)
        squared[test] = (model.predict(design[test]) - log.rewards[test]) ** 2
    return float(squared.mean())


def _not_binary(rewards: np.ndarray) -> bool:
    return not np.isin(rewards, (0.0, 1.0)).all()


def importances(log: Logged, ignore: frozenset[str] = frozenset(),
                types: FeatureTypes = NO_TYPES) -> list[dict[str, Any]]:
    """Feature scores, most important first (see the module docstring).

    Returns:
        One dict per feature: ``namespace``, ``featureName``, ``kind``, ``score`` (in
        [0, 1], None when not scored), ``errorIncrease``, ``count``, ``distinctValues``.
    """
    tallies = tally(log, ignore)
    ranked = sorted(tallies, key=lambda f: (-tallies[f].count, f))
    scored = ranked[:MAX_FEATURES]
    folds = hash_folds(log.event_ids, 2)
    if len(log.event_ids) < 4 or len(set(folds.tolist())) < 2:
        rises: dict[Feature, float] = {}
    else:
        base = held_out_error(log, None, folds, ignore, types)
        rises = {f: held_out_error(log, f, folds, ignore, types) - base for f in scored}
    top = max([r for r in rises.values() if r > 0], default=0.0)
    rows = [{"namespace": f.namespace or f.kind, "featureName": f.name, "kind": f.kind,
             "score": (max(rises[f], 0.0) / top if top > 0 else 0.0) if f in rises else None,
             "errorIncrease": rises.get(f), "count": tallies[f].count,
             "distinctValues": len(tallies[f].values)} for f in ranked]
    return sorted(rows, key=lambda r: (r["score"] is None, -(r["errorIncrease"] or 0.0)))


def _sampled(event_id: str, rate: float) -> bool:
    return rate >= 1.0 or zlib.crc32(f"fi:{event_id}".encode()) < rate * 2**32


def read_log(session: Session, experiment: Experiment, start: float, end: float,
             now: float | None = None) -> Logged:
    """The window's closed decisions (the OPE report's scope), sampled to ``MAX_ROWS``."""
    scope = scope_of(session, experiment, now=now, since=start, until=end)
    rate = min(1.0, MAX_ROWS / max(count(session, scope), 1))
    contexts, actions, chosen, rewards, ids = [], [], [], [], []
    for chunk in chunks(session, scope):
        for i, event_id in enumerate(chunk.event_ids):
            if _sampled(event_id, rate):
                contexts.append(chunk.contexts[i])
                actions.append(chunk.actions[i])
                chosen.append(int(chunk.chosen[i]))
                rewards.append(float(chunk.rewards[i]))
                ids.append(event_id)
    return Logged(contexts, actions, np.array(chosen, dtype=np.int64),
                  np.array(rewards, dtype=float), ids)


def compute(session: Session, experiment: Experiment, start: float, end: float,
            now: float | None = None) -> dict[str, Any]:
    """Feature importances on the decisions logged in ``[start, end)``."""
    log = read_log(session, experiment, start, end, now)
    unit_field = experiment.settings.unit_field
    ignore = frozenset({unit_field}) if unit_field else frozenset()
    return {"n_decisions": len(log.event_ids), "method": "drop-column: rise of the 2-fold "
            "cross-validated reward model's mean squared error without the feature",
            "featureScores": importances(
                log, ignore, experiment.settings.types)}


def simulate(seed: int, n: int = 1500, noise: int = 4) -> Logged:
    """Uniformly logged decisions where only ``segment`` decides the best action (tests)."""
    rng = np.random.default_rng(seed)
    actions = [{"id": f"a{j}", "features": {"color": c}}
               for j, c in enumerate(("red", "green", "blue"))]
    segment = rng.integers(0, 3, n)
    chosen = rng.integers(0, 3, n)
    rewards = (rng.random(n) < np.where(chosen == segment, 0.7, 0.2)).astype(float)
    contexts = [{"segment": f"s{segment[i]}", **{f"noise{k}": f"v{rng.integers(0, 5)}"
                                                   for k in range(noise)}} for i in range(n)]
    return Logged(contexts, [actions] * n, chosen, rewards,
                  [f"{seed}-{i}" for i in range(n)])
