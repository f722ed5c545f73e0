"""Model snapshots: the ``models`` table (VW bytes that ``vw -i`` reads, and counters).

Versions count up per experiment (1, 2, ...), whoever publishes: the learner or an admin
import. The bandit arm serves the newest version whose ``arguments`` equal the current
configuration's (``experiments.policies.PolicyCache``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.errors import NotFound, ValidationFailed
from experiments.models import Experiment, Model

PRUNE_HOUR = 3600.0


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot without its bytes."""

    version: int
    arguments: str
    examples_learned: int
    source: str
    size_bytes: int
    created_at: float
    metrics: dict[str, Any] | None


def latest(session: Session, experiment_id: int, arguments: str | None = None) -> Model | None:
    """The newest snapshot (of these arguments, when given), or None."""
    query = sa.select(Model).where(Model.experiment_id == experiment_id)
    if arguments is not None:
        query = query.where(Model.arguments == arguments)
    return session.scalars(query.order_by(Model.version.desc()).limit(1)).first()


def serving(session: Session, experiment: Experiment) -> Model | None:
    """The snapshot the bandit arm serves now (None: a fresh model, version 0)."""
    return latest(session, experiment.id, experiment.settings.learner.vw_arguments)


def find(session: Session, experiment: Experiment, ref: str) -> Model:
    """A snapshot by version number, or ``latest`` (the one the bandit serves)."""
    if ref == "latest":
        model = serving(session, experiment)
        if model is None:
            raise NotFound("no model snapshot yet for the current learner settings")
        return model
    if not ref.isdigit() or len(ref) > 9:
        raise ValidationFailed.field("version", "must be a positive integer or 'latest'")
    model = session.scalars(sa.select(Model).where(
        Model.experiment_id == experiment.id, Model.version == int(ref))).first()
    if model is None:
        raise NotFound(f"no model version {ref}")
    return model


def _info_query(experiment_id: int) -> sa.Select[Any]:
    return sa.select(
        Model.version, Model.arguments, Model.examples_learned, Model.source,
        sa.func.length(Model.data).label("size"), Model.created_at, Model.metrics,
    ).where(Model.experiment_id == experiment_id).order_by(Model.version.desc())


def _info(row: Any) -> SnapshotInfo:
    return SnapshotInfo(row.version, row.arguments, row.examples_learned, row.source,
                        row.size or 0, row.created_at, row.metrics)


def listing(session: Session, experiment_id: int, limit: int = 1000) -> list[SnapshotInfo]:
    """Stored snapshots, newest first, without the bytes."""
    return [_info(r) for r in session.execute(_info_query(experiment_id).limit(limit))]


def serving_info(session: Session, experiment: Experiment) -> SnapshotInfo | None:
    """``serving`` without the bytes."""
    row = session.execute(_info_query(experiment.id).where(
        Model.arguments == experiment.settings.learner.vw_arguments).limit(1)).first()
    return None if row is None else _info(row)


def next_version(session: Session, experiment_id: int) -> int:
    newest = session.scalar(sa.select(sa.func.max(Model.version))
                            .where(Model.experiment_id == experiment_id))
    return (newest or 0) + 1


def publish(session: Session, experiment_id: int, *, arguments: str, data: bytes,
            examples_learned: int, metrics: dict[str, Any] | None, source: str) -> Model:
    """Add the next version (flushed, not committed: the caller's transaction decides).

    Two publishers racing for one version number collide on the unique constraint
    (experiment_id, version); the loser's transaction fails as a whole.
    """
    model = Model(experiment_id=experiment_id, version=next_version(session, experiment_id),
                  arguments=arguments, data=data, examples_learned=examples_learned,
                  source=source, metrics=metrics, created_at=clock.now())
    session.add(model)
    session.flush()
    return model


def prune(session: Session, experiment: Experiment, keep: int) -> int:
    """Delete old learner snapshots; the caller commits. Returns how many went.

    Kept: the newest ``keep`` versions, the newest of each hour (a coarse history for
    audits and off-policy evaluation), the newest of each argument string (settings
    switched back resume from it), imports, and versions the configuration uses.
    ``keep <= 0`` keeps everything.
    """
    if keep <= 0:
        return 0
    rows = session.execute(sa.select(Model.version, Model.arguments, Model.source,
                                     Model.created_at).where(Model.experiment_id == experiment.id)
                           .order_by(Model.version.desc())).all()
    if len(rows) <= keep:
        return 0
    protected = experiment.settings.model_versions | {r.version for r in rows[:keep]}
    seen: set[Any] = set()
    for row in rows:  # newest first: the first of each group is its newest
        for group in (("hour", int(row.created_at // PRUNE_HOUR)), ("args", row.arguments)):
            if group not in seen:
                seen.add(group)
                protected.add(row.version)
    doomed = [r.version for r in rows if r.version not in protected and r.source == "learner"]
    if doomed:
        session.execute(sa.delete(Model).where(Model.experiment_id == experiment.id,
                                               Model.version.in_(doomed)))
    return len(doomed)
