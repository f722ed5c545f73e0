"""Counterfactual audit: the current model's pmf on logged contexts with the attribute set
to each other observed value, summarised by the mean total-variation distance.

Contexts are the logged ones (PII-guarded and profile-merged as the model saw them), all
arms, those whose attribute has one of the report's top values. The sample is a fixed
pseudo-random permutation of decision ids (``id * 40503 mod 65537``), so the same window
gives the same sample on both databases and on every call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits.features import FeatureError, FeatureTypes
from bandits.policy import Policy, PolicyError
from experiments.fairness.stats import MeanDistance, mean_distance, total_variation
from experiments.models import Decision
from experiments.reports.sql import Scope, dialect, json_text


@dataclass(frozen=True, slots=True)
class Sampled:
    """One logged decision to audit.

    Attributes:
        unit: Its unit (``#<id>`` for a decision without one: a unit of its own).
        label: Its attribute value, as text (the report's label).
        context: The logged context.
        actions: The offered actions, ``(id, features)`` in logged order.
    """

    unit: str
    label: str
    context: dict[str, Any]
    actions: list[tuple[str, Any]]


def sample_contexts(session: Session, scope: Scope, path: tuple[str, ...],
                    values: Sequence[str], limit: int) -> list[Sampled]:
    """Up to ``limit`` decisions whose attribute is one of ``values``."""
    if not values:
        return []
    label = json_text(dialect(session), Decision.context, path)
    order = (Decision.id * 40503) % 65537
    query = (sa.select(Decision.id, Decision.unit_id, label, Decision.context,
                       Decision.actions)
             .where(*scope.conditions(), label.in_(list(values)))
             .order_by(order, Decision.id).limit(limit))
    return [Sampled(unit or f"#{did}", value, context,
                    [(a["id"], a.get("features") or {}) for a in actions])
            for did, unit, value, context, actions in session.execute(query)]


def swapped(context: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``context`` with the field at ``path`` set to ``value``.

    Examples:
        >>> swapped({"user": {"gender": "f", "age": 30}}, ("user", "gender"), "m")
        {'user': {'gender': 'm', 'age': 30}}
    """
    out = copy.deepcopy(dict(context))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def typed_values(samples: Sequence[Sampled], path: tuple[str, ...]) -> dict[str, Any]:
    """Each label's JSON value as logged (a number stays a number when swapped in)."""
    found: dict[str, Any] = {}
    for s in samples:
        node: Any = s.context
        for key in path:
            node = node[key]
        found.setdefault(s.label, node)
    return found


@dataclass(frozen=True, slots=True)
class Audit:
    """The audit's distances: over every swap, and per (from, to) value pair.

    Attributes:
        overall: Mean distance over every (context, other value).
        pairs: Per ``(from, to)``, the mean distance of those swaps.
        skipped: Contexts the model could not score (not encodable any more).
    """

    overall: MeanDistance
    pairs: dict[tuple[str, str], MeanDistance]
    skipped: int


def run_audit(policy: Policy, types: FeatureTypes, samples: Sequence[Sampled],
              path: tuple[str, ...], values: Sequence[str], alpha: float) -> Audit:
    """Distances between each sample's pmf and its pmf with every other value swapped in."""
    typed = {**{v: v for v in values}, **typed_values(samples, path)}
    overall: dict[str, list[float]] = {}
    pairs: dict[tuple[str, str], dict[str, list[float]]] = {}
    skipped = 0
    for s in samples:
        try:
            found = _distances(policy, types, s, path, [(v, typed[v]) for v in values
                                                         if v != s.label])
        except (FeatureError, PolicyError):
            skipped += 1
            continue
        for other, tv in found:
            overall.setdefault(s.unit, []).append(tv)
            pairs.setdefault((s.label, other), {}).setdefault(s.unit, []).append(tv)
    return Audit(mean_distance(overall, alpha),
                 {k: mean_distance(v, alpha) for k, v in sorted(pairs.items())}, skipped)


def _distances(policy: Policy, types: FeatureTypes, s: Sampled, path: tuple[str, ...],
               others: list[tuple[str, Any]]) -> list[tuple[str, float]]:
    base = policy.pmf(s.context, s.actions, types)
    return [(label, total_variation(base, policy.pmf(swapped(s.context, path, value),
                                                     s.actions, types)))
            for label, value in others]
