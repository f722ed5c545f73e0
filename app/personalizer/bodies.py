"""Typed bodies of Azure Personalizer's requests, as its clients send them (camelCase):
what /openapi.json documents for the Personalizer endpoints (`app/openapi_bodies.py`), and,
for the service configuration, the fields a PUT may name. The views read them into
Tailor's commands; the values are checked there (errors in Personalizer's shape).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required, TypedDict

from msgspec import Meta

Features = list[dict[str, Any]]  # Personalizer sends features as a list of objects
EventId = Annotated[str, Meta(max_length=256)]


class PersonalizerAction(TypedDict, total=False):
    id: Required[str]
    features: Features


class PersonalizerRankRequest(TypedDict, total=False):
    """Rank the actions for the context (Personalizer's RankRequest)."""

    contextFeatures: Features
    actions: list[PersonalizerAction]
    excludedActions: list[str]
    eventId: EventId
    deferActivation: bool


class PersonalizerSlot(TypedDict, total=False):
    id: Required[str]
    features: Features
    positionFeatures: Features
    excludedActions: list[str]
    baselineAction: str


class PersonalizerMultiSlotRankRequest(TypedDict, total=False):
    """Rank one action per slot, each slot's distinct (MultiSlotRankRequest)."""

    contextFeatures: Features
    actions: Required[list[PersonalizerAction]]
    slots: Required[list[PersonalizerSlot]]
    eventId: EventId
    deferActivation: bool


class PersonalizerServiceConfiguration(TypedDict, total=False):
    """The service configuration (durations: ISO 8601 such as PT10M, or 00:10:00)."""

    rewardWaitTime: str
    defaultReward: float
    rewardAggregation: str
    explorationPercentage: Annotated[float, Meta(ge=0, le=1)]
    modelExportFrequency: str
    logRetentionDays: Annotated[int, Meta(description="-1: forever")]
    learningMode: Literal["Online", "Apprentice", "LoggingOnly"]
    modelRetrainDays: int
    isAutoOptimizationEnabled: bool
    autoOptimizationFrequency: str
    autoOptimizationStartDate: str
    logMirrorEnabled: bool
    logMirrorSasUri: str


class PersonalizerPolicy(TypedDict, total=False):
    """The learning policy as VW arguments (allow-listed learning options)."""

    name: Annotated[str, Meta(max_length=256)]
    arguments: Required[Annotated[str, Meta(max_length=1024)]]


class PersonalizerReward(TypedDict):
    """A reward value for the event."""

    value: float


class PersonalizerSlotReward(TypedDict):
    slotId: str
    value: float


class PersonalizerMultiSlotReward(TypedDict):
    """A reward value per slot of the event."""

    reward: list[PersonalizerSlotReward]
