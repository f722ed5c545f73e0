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
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import audit, clock
from experiments.errors import Conflict, DomainError, NotFound, ValidationFailed
from experiments.models import Experiment, OfflineJob

KINDS = ("evaluation", "featureimportance")
STALE_SECONDS = 3600.0
MAX_ID = 256
MAX_WINDOW_SECONDS = 366 * 86400.0
log = logging.getLogger("tailor.offline")
Compute = Callable[[Session, Experiment, OfflineJob], dict[str, Any]]


def _time(body: Mapping[str, Any], field: str) -> float:
    value = body.get(field)
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "required: an ISO 8601 date-time")
    try:
        return clock.parse_iso(value)
    except ValueError:
        raise ValidationFailed.field(field, f"{value!r} is not an ISO 8601 date-time") from None


def query_time(raw: str | None, field: str, default: float) -> float:
    """An optional ISO 8601 query parameter as epoch seconds (``default`` when absent)."""
    if not raw:
        return default
    try:
        return clock.parse_iso(raw)
    except ValueError:
        raise ValidationFailed.field(field, f"{raw!r} is not an ISO 8601 date-time") from None


def window(body: Any) -> tuple[str, float, float]:
    """``(name, start, end)`` of a job request.

    Raises:
        ValidationFailed: Naming the field.
    """
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_ID:
        raise ValidationFailed.field("name", f"required: a name of 1 to {MAX_ID} characters")
    start, end = _time(body, "startTime"), _time(body, "endTime")
    if not start < end:
        raise ValidationFailed.field("endTime", "must be after startTime")
    if end - start > MAX_WINDOW_SECONDS:
        raise ValidationFailed.field("startTime", "the window is at most 366 days")
    return name, start, end


def check_id(job_id: str, field: str) -> str:
    if not job_id or len(job_id) > MAX_ID:
        raise ValidationFailed.field(field, f"must be 1 to {MAX_ID} characters")
    return job_id


def create(session: Session, experiment: Experiment, kind: str, job_id: str, name: str,
           start: float, end: float, request: dict[str, Any]) -> OfflineJob:
    """A new ``Running`` job (commits).

    Raises:
        Conflict: A job of this kind and id exists already.
    """
    now = clock.now()
    job = OfflineJob(experiment_id=experiment.id, kind=kind, job_id=job_id, name=name,
                     status="Running", request=request, result=None, error=None,
                     start_time=start, end_time=end, created_at=now, updated_at=now)
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
