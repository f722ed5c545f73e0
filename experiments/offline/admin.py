"""Model and log administration, as Personalizer's ``model`` and ``logs`` endpoints did it.

- Export: the bytes of the snapshot the bandit serves (``experiments.learning.snapshots``),
  which ``vw -i <file>`` loads with the snapshot's arguments; before the first snapshot, a
  fresh model with the current arguments (what the bandit serves then).
- Import: ``experiments.learning.imports`` (VW must load and rank with it, else 400).
- Reset: a fresh model with the current arguments, published as the next version
  (``source = "reset"``): the bandit serves it and the learner continues from it.
- Properties: ``creationTime`` is when the current model line began (the newest import or
  reset, else the experiment's creation); ``lastModifiedTime`` the serving snapshot's time.
- Deleting the logs removes every decision of the experiment with its rewards, idempotency
  keys and supplied candidate probabilities (``experiments.erasure``), and the rewards and
  activations still waiting for their decision (``pending_events``), in one transaction
  with its audit entry. Model snapshots stay (reset the model for that).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bandits.learner import OnlineLearner
from experiments import audit, erasure
from experiments.errors import Conflict
from experiments.learning import imports, snapshots
from experiments.models import Decision, Experiment, Model, PendingEvent


@dataclass(frozen=True)
class Exported:
    """A model file: its bytes, the arguments it loads with, and its version (0: fresh)."""

    data: bytes
    arguments: str
    version: int


def fresh_bytes(arguments: str) -> bytes:
    """A new, untrained model with these arguments."""
    learner = OnlineLearner(arguments)
    try:
        return learner.to_bytes()
    finally:
        learner.close()


def export(session: Session, experiment: Experiment) -> Exported:
    """The model the bandit serves now."""
    model = snapshots.serving(session, experiment)
    if model is None:
        arguments = experiment.settings.learner.vw_arguments
        return Exported(fresh_bytes(arguments), arguments, 0)
    return Exported(model.data, model.arguments, model.version)


def import_model(session: Session, experiment: Experiment, data: bytes,
                 actor: audit.Actor | audit.KeyPrincipal) -> Model:
    """Store an uploaded model as the next version the bandit serves (commits)."""
    return imports.import_model(session, experiment, data, None, actor)


def reset(session: Session, experiment: Experiment,
          actor: audit.Actor | audit.KeyPrincipal) -> Model:
    """Publish a fresh model as the next version (commits)."""
    arguments = experiment.settings.learner.vw_arguments
    data = fresh_bytes(arguments)
    try:
        model = snapshots.publish(session, experiment.id, arguments=arguments, data=data,
                                  examples_learned=0, metrics=None, source="reset")
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("the learner published a version at the same moment; retry") from exc
    audit.record(session, actor, "model.reset", experiment.key,
                 {"version": model.version, "arguments": arguments,
                  "sha256": hashlib.sha256(data).hexdigest()})
    session.commit()
    return model


def properties(session: Session, experiment: Experiment) -> tuple[float, float]:
    """``(creation time, last modified time)`` of the served model line."""
    arguments = experiment.settings.learner.vw_arguments
    began = session.scalar(sa.select(sa.func.max(Model.created_at)).where(
        Model.experiment_id == experiment.id, Model.arguments == arguments,
        Model.source.in_(("import", "reset"))))
    created = began if began is not None else experiment.created_at
    served = snapshots.serving_info(session, experiment)
    return created, served.created_at if served is not None else created


def log_range(session: Session, experiment: Experiment) -> tuple[float | None, float | None]:
    """First and last time a decision of the experiment was logged (None: no decisions)."""
    first, last = session.execute(sa.select(sa.func.min(Decision.created_at),
                                            sa.func.max(Decision.created_at))
                                  .where(Decision.experiment_id == experiment.id)).one()
    return first, last


def delete_logs(session: Session, experiment: Experiment,
                actor: audit.Actor | audit.KeyPrincipal) -> dict[str, Any]:
    """Delete every decision and reward of the experiment, audited (commits)."""
    condition = Decision.experiment_id == experiment.id
    rewards = erasure.delete_dependents(session, condition)
    result = session.execute(sa.delete(Decision).where(condition),
                             execution_options={"synchronize_session": False})
    pending = session.execute(sa.delete(PendingEvent).where(
        PendingEvent.experiment_id == experiment.id),
        execution_options={"synchronize_session": False})
    deleted = {"decisions": getattr(result, "rowcount", 0) or 0, "rewards": rewards,
               "pending_events": getattr(pending, "rowcount", 0) or 0}
    audit.record(session, actor, "logs.delete", experiment.key, deleted)
    session.commit()
    return deleted
