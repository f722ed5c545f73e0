"""Shared pieces of the evaluation and feature-importance views: starting, finding, listing
and serializing `offline_jobs` rows in Personalizer's shapes."""

from __future__ import annotations

from typing import Any

from flask import request

from app import db, offline
from app.personalizer.errors import PersonalizerError
from experiments import clock
from experiments.models import Experiment, OfflineJob
from experiments.offline import jobs


def started(job: OfflineJob) -> OfflineJob:
    """Start computing a job just stored (in a thread of this process)."""
    offline.start(job.id, job.kind)
    return job


def header(job: OfflineJob) -> dict[str, Any]:
    """The fields every listing and answer of a job has."""
    out: dict[str, Any] = {"id": job.job_id, "name": job.name,
                           "startTime": clock.iso(job.start_time),
                           "endTime": clock.iso(job.end_time),
                           "creationTime": clock.iso(job.created_at),
                           "status": jobs.status(job)}
    if job.error:
        out["description"] = job.error
    return out


def _int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise PersonalizerError.invalid(name, "must be a non-negative integer")
    return int(raw)


def page(target: Experiment, kind: str) -> list[OfflineJob]:
    """The jobs of a listing (`skip`, `top`)."""
    return jobs.listing(db.session(), target, kind, _int("skip") or 0, _int("top"))
