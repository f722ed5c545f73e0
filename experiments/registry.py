"""The experiment registry: create, read and change experiments, keeping every version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import clock, stored_embeddings
from experiments.errors import Conflict, NotFound
from experiments.models import Experiment, ExperimentHistory
from experiments.validation import (
    changed_fields,
    validate_new,
    validate_patch,
    validate_replacement,
)


def get(session: Session, team_id: int, key: str) -> Experiment:
    """The team's experiment `key`; another team's experiment does not exist (404)."""
    experiment = session.scalars(
        sa.select(Experiment).where(Experiment.team_id == team_id, Experiment.key == key)
    ).first()
    if experiment is None:
        raise NotFound(f"no experiment {key!r}")
    stored_embeddings.read_catalog(session, experiment)
    return experiment


def list_for_team(session: Session, team_id: int) -> list[Experiment]:
    return list(session.scalars(
        sa.select(Experiment).where(Experiment.team_id == team_id).order_by(Experiment.key)))


def _record(session: Session, experiment: Experiment, change: str, actor: str | None,
            details: Mapping[str, Any] | None = None) -> None:
    session.add(ExperimentHistory(
        experiment_id=experiment.id, version=experiment.version, change=change, actor=actor,
        config=experiment.config, details=dict(details) if details else None,
        created_at=clock.now()))


def create(session: Session, team_id: int, payload: Any, actor: str | None) -> Experiment:
    now = clock.now()
    experiment = Experiment(team_id=team_id, config=validate_new(payload), version=1,
                            created_at=now, updated_at=now)
    experiment.key, experiment.status = experiment.settings.key, experiment.settings.status
    session.add(experiment)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"experiment {experiment.key!r} already exists") from exc
    _record(session, experiment, "create", actor)
    stored_embeddings.store_catalog(session, experiment)
    session.commit()
    return experiment


def replace_config(session: Session, experiment: Experiment, config: dict[str, Any],
                   change: str, actor: str | None,
                   details: Mapping[str, Any] | None = None) -> Experiment:
    """Store a new version of the configuration and its history row. Caller commits."""
    experiment.config = config
    experiment.status = experiment.settings.status
    experiment.version += 1
    experiment.updated_at = clock.now()
    _record(session, experiment, change, actor, details)
    stored_embeddings.store_catalog(session, experiment)
    return experiment


@dataclass(frozen=True)
class ChangeConfig:
    """Replace whole sections of an experiment's configuration (a promotion's `champion`,
    an applied evaluation's `learner`, the Personalizer service configuration's `reward`,
    `learner` and `service`...): the sections as they are stored, worked out by the caller
    from its own settings; the new configuration is what validation makes of them
    (`validation.validate_replacement`, the one place a changed configuration is made)."""

    experiment: Experiment
    changes: Mapping[str, Any]  # top-level section -> its new stored value
    change: str  # the history row's `change`, e.g. "personalizer_policy"
    actor: str | None  # the acting key id
    details: Mapping[str, Any] | None = None


def stage_change(session: Session, command: ChangeConfig) -> bool:
    """Validate the changed configuration and add it as the next version, unless it is the
    current one (the caller commits). Returns whether a version was added.

    Raises:
        ValidationFailed: the changed configuration is not valid (nothing added).
    """
    current = command.experiment.config
    config = validate_replacement(current, command.changes)
    if config == current:
        return False
    replace_config(session, command.experiment, config, command.change, command.actor,
                   command.details)
    return True


def change_config(session: Session, command: ChangeConfig) -> bool:
    """`stage_change`, committed. Returns whether a version was written."""
    changed = stage_change(session, command)
    if changed:
        session.commit()
    return changed


def patch(session: Session, experiment: Experiment, payload: Any,
          actor: str | None) -> Experiment:
    config = validate_patch(experiment.config, payload)
    changed = changed_fields(experiment.config, config, payload)
    if not changed:
        return experiment
    replace_config(session, experiment, config, "update", actor, {"fields": changed})
    session.commit()
    return experiment


def history(session: Session, experiment: Experiment) -> list[ExperimentHistory]:
    return list(session.scalars(
        sa.select(ExperimentHistory).where(ExperimentHistory.experiment_id == experiment.id)
        .order_by(ExperimentHistory.version)))


def serialize(experiment: Experiment) -> dict[str, Any]:
    return {**experiment.config, "status": experiment.status, "version": experiment.version,
            "created_at": clock.iso(experiment.created_at),
            "updated_at": clock.iso(experiment.updated_at)}
