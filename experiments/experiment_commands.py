"""Registering and changing experiments over the API, each with its audit entry in the same
transaction (`registry` commits it).

The bodies are typed here (`ExperimentSpec`, `ExperimentChanges`): they are what
`/openapi.json` documents for `POST /v1/experiments` and `PATCH /v1/experiments/{key}`
(`app/openapi_bodies.py`), and their keys are the configuration keys `experiments.validation`
accepts (a unit test holds the two together). A body reaches the service as received; the
service validates it (`validation.validate_new`, `validate_patch`: a 400 naming the path,
with the closest known key for a misspelt one) before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Required, TypedDict

from msgspec import Meta
from sqlalchemy.orm import Session

from experiments import audit, registry
from experiments.command_fields import context, whole_body
from experiments.keys import Principal
from experiments.models import Experiment
from experiments.validation import changed_fields, validate_patch

Probability = Annotated[float, Meta(ge=0, le=1)]


class ActionSpec(TypedDict, total=False):
    """An action of the catalog (or of a rank request)."""

    id: Required[Annotated[str, Meta(min_length=1, max_length=256)]]
    features: dict[str, Any]


class RewardSpec(TypedDict, total=False):
    """How reward events become a decision's reward."""

    events: Annotated[dict[str, float | Literal["value"]], Meta(
        description='event type -> its reward, or "value" (the event carries it)')]
    aggregation: Literal["sum", "earliest", "max", "min", "average", "median"]
    window_seconds: Annotated[float, Meta(ge=0)]
    default: float


class LearnerSpec(TypedDict, total=False):
    """The bandit: exploration preset, its VW parameters, and the learning mode."""

    exploration: Literal["epsilon", "greedy", "squarecb", "softmax", "bag", "cover", "regcb"]
    params: dict[str, Any]
    mode: Literal["online", "apprentice", "logging"]


class ChampionSpec(TypedDict, total=False):
    """The policy the bandit is compared with (and serves the champion arm)."""

    type: Literal["fixed", "uniform", "baseline", "model"]
    action_id: str
    version: int


class ProfileSetting(TypedDict, total=False):
    """Merge the unit's stored profile into the context under `namespace`."""

    namespace: str
    max_age_seconds: float


class ExperimentChanges(TypedDict, total=False):
    """The settings that can change after registration (each change: a new version)."""

    name: str
    description: str
    status: Literal["draft", "running", "paused", "stopped"]
    arms: Annotated[dict[str, Probability], Meta(description="arm -> traffic share")]
    learner: LearnerSpec
    actions: list[ActionSpec]
    alpha: float
    pii_fields: list[str]
    pii_mode: Literal["hash", "reject"]
    analysis: dict[str, Any]
    service: dict[str, Any]
    profile: ProfileSetting | None


class ExperimentSpec(ExperimentChanges, total=False):
    """A new experiment; every setting but `key` has a default."""

    key: Required[Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9_-]{0,63}$")]]
    reward: RewardSpec
    champion: ChampionSpec
    unit_field: str
    feature_types: dict[str, Literal["text", "vector", "embedding"]]


@dataclass(frozen=True, kw_only=True)
class CreateExperiment:
    """Register an experiment in the caller's team."""

    actor: Principal = context()
    spec: ExperimentSpec = whole_body()


@dataclass(frozen=True, kw_only=True)
class PatchExperiment:
    """Change an experiment of the caller's team (status, arms, learner...)."""

    actor: Principal = context()
    experiment: Experiment = context()  # the path's, looked up in the actor's team
    changes: ExperimentChanges = whole_body()


def create(session: Session, command: CreateExperiment) -> Experiment:
    """Register the experiment and audit it, in one transaction; commits.

    Raises:
        ValidationFailed: an invalid body (nothing written, nothing audited).
        Conflict: the team has an experiment of that key.
    """
    actor, spec = command.actor, command.spec
    # Added first so registry.create's commit includes it; a failed create rolls it back.
    audit.record(session, actor, "experiment.create",
                 str(spec.get("key")) if isinstance(spec, dict) else None)
    return registry.create(session, actor.team_id, spec, actor.key_id)


def patch(session: Session, command: PatchExperiment) -> Experiment:
    """Apply the changes (a new version, audited) unless they change nothing; commits."""
    actor, experiment = command.actor, command.experiment
    config = validate_patch(experiment.config, command.changes)
    changed = changed_fields(experiment.config, config, command.changes)
    if changed:  # recorded in the same transaction as the change (registry.patch commits)
        audit.record(session, actor, "experiment.update", experiment.key,
                     {"fields": changed, "version": experiment.version + 1})
    return registry.patch(session, experiment, command.changes, actor.key_id)
