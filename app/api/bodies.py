"""Typed bodies of the v1 endpoints whose services do not take a command record yet (rank,
rewards): what /openapi.json documents for them (`app/openapi_bodies.py`).

Rank and reward are being rebuilt around frozen `RankCommand` / `RewardCommand` records
(issue 15, the hot path); when those exist, `app.openapi.ENDPOINTS` names them instead and
the matching class here goes. The shapes are API.md's; the services validate every value.
"""

from __future__ import annotations

from typing import Annotated, Any, Required, TypedDict

from msgspec import Meta

from experiments.experiment_commands import ActionSpec

Features = Annotated[dict[str, Any], Meta(
    description="strings (categorical), numbers, booleans, lists of strings, one level of "
    "nested objects (namespaces)")]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=128)]


class RankRequest(TypedDict, total=False):
    """Choose an action for a context (the experiment's catalog when `actions` is absent)."""

    context: Features
    actions: list[ActionSpec]
    excluded_actions: list[str]
    event_id: IdempotencyKey
    unit_id: Annotated[str, Meta(min_length=1, max_length=256)]
    defer_activation: bool
    explain: Annotated[bool, Meta(
        description="add the chosen action's top feature contributions")]


class _RewardFields(TypedDict, total=False):
    type: str
    value: float
    idempotency_key: IdempotencyKey


class Reward(_RewardFields, total=False):
    """A reward event for a decision (`type` maps to a value by the experiment's rule)."""

    event_id: Annotated[str, Meta(
        description="optional: the path's event id (another one is refused)")]


class BatchReward(_RewardFields, total=False):
    """A reward of a batch, naming its decision."""

    event_id: Required[str]


class RewardBatch(TypedDict):
    """Up to 1000 rewards; bad items are reported by index, the others kept."""

    rewards: Annotated[list[BatchReward], Meta(min_length=1, max_length=1000)]
