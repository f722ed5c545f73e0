"""Run an offline job (evaluation, feature importance) in a thread of this process.

The job's row is committed before the thread starts; the thread opens its own session
(never the request's), computes, and commits the outcome (`experiments.offline.jobs.run`).
A thread that dies with its worker leaves the row `Running`, which reads as `Timeout` after
`jobs.STALE_SECONDS`.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

from app.db import EXTENSION
from experiments.offline import jobs, service


def _work(app: Flask, job_pk: int, kind: str) -> None:
    with app.app_context():
        session = app.extensions[EXTENSION]()
        try:
            jobs.run(session, job_pk, service.COMPUTE[kind])
        finally:
            session.close()


def start(job_pk: int, kind: str) -> None:
    """Compute the job in a background thread."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    threading.Thread(target=_work, args=(app, job_pk, kind), daemon=True,
                     name=f"tailor-{kind}-{job_pk}").start()
