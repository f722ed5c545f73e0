"""Background jobs of the Personalizer administration API: offline evaluations and feature
importances, one ``offline_jobs`` row each.

A PUT creates the row (status ``Running``) and the web layer starts the computation in a
thread of the process that received it (``app.offline``); the client polls GET, which any
process answers from the row. The computation commits the result and ``Succeeded`` (or
``Failed`` with the reason) in one transaction. A row still ``Running`` after
``STALE_SECONDS`` reads as ``Timeout`` (the process that ran it has died).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import audit, clock
from experiments.errors import Conflict, DomainError, NotFound
from experiments.models import Experiment, OfflineJob
from experiments.offline.commands import JobWindow

KINDS = ("evaluation", "featureimportance")
STALE_SECONDS = 3600.0
MAX_ID = 256
MAX_WINDOW_SECONDS = 366 * 86400.0
log = logging.getLogger("tailor.offline")
Compute = Callable[[Session, Experiment, OfflineJob], dict[str, Any]]


def create(session: Session, experiment: Experiment, kind: str, job_id: str,
           window: JobWindow, request: dict[str, Any]) -> OfflineJob:
    """A new ``Running`` job (commits).

    Raises:
        Conflict: A job of this kind and id exists already.
    """
    now = clock.now()
    job = OfflineJob(experiment_id=experiment.id, kind=kind, job_id=job_id, name=window.name,
                     status="Running", request=request, result=None, error=None,
                     start_time=window.start, end_time=window.end, created_at=now,
                     updated_at=now)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a {kind} with id {job_id!r} exists already: delete it first, or "
                       "use another id") from None
    return job


def find(session: Session, experiment: Experiment, kind: str, job_id: str) -> OfflineJob:
    job = session.scalars(sa.select(OfflineJob).where(
        OfflineJob.experiment_id == experiment.id, OfflineJob.kind == kind,
        OfflineJob.job_id == job_id)).first()
    if job is None:
        raise NotFound(f"no {kind} with id {job_id!r}")
    return job


def listing(session: Session, experiment: Experiment, kind: str, skip: int = 0,
            top: int | None = None) -> list[OfflineJob]:
    query = (sa.select(OfflineJob).where(OfflineJob.experiment_id == experiment.id,
                                         OfflineJob.kind == kind)
             .order_by(OfflineJob.created_at, OfflineJob.id).offset(max(skip, 0)))
    if top is not None:
        query = query.limit(max(top, 0))
    return list(session.scalars(query))


def delete(session: Session, experiment: Experiment, kind: str, job_id: str,
           actor: audit.Actor | audit.KeyPrincipal) -> None:
    """Delete a job (commits; a job still running writes its result nowhere)."""
    job = find(session, experiment, kind, job_id)
    session.delete(job)
    audit.record(session, actor, f"{kind}.delete", experiment.key, {"id": job_id})
    session.commit()


def status(job: OfflineJob, now: float | None = None) -> str:
    """The job's status, ``Timeout`` for one running for longer than ``STALE_SECONDS``."""
    if job.status == "Running" and (now or clock.now()) - job.updated_at > STALE_SECONDS:
        return "Timeout"
    return job.status


def run(session: Session, job_pk: int, compute: Compute) -> None:
    """Compute a job and store its outcome (commits). Never raises for the job's own
    failures: they become status ``Failed`` with the message."""
    job = session.get(OfflineJob, job_pk)
    if job is None:
        return
    experiment = session.get(Experiment, job.experiment_id)
    assert experiment is not None
    try:
        result, state, error = compute(session, experiment, job), "Succeeded", None
    except DomainError as exc:
        session.rollback()
        result, state, error = None, "Failed", exc.message
    except Exception as exc:  # the job fails, the worker thread stays healthy
        session.rollback()
        log.exception("offline %s %s failed", job.kind, job.job_id)
        result, state, error = None, "Failed", f"internal error: {type(exc).__name__}"
    updated = session.execute(sa.update(OfflineJob).where(OfflineJob.id == job_pk).values(
        status=state, result=result, error=error, updated_at=clock.now()))
    if not getattr(updated, "rowcount", 1):
        log.info("offline job %s was deleted while it ran", job_pk)
    session.commit()
