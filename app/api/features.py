"""Feature importance on Tailor's own API: `GET /v1/experiments/{key}/reports/features`.

Computes the importances of the decisions logged in `[since, until)` (default: everything
logged so far) now, stores them as a feature-importance job (the analyst page shows the
newest; Personalizer's `featureImportances` lists it too) and answers them.
"""

from __future__ import annotations

import uuid

from flask import jsonify, request

from app import db
from app.api import bp
from app.auth import requires, team_experiment
from app.http import query_time
from experiments import clock
from experiments.errors import ValidationFailed
from experiments.offline import jobs, service
from experiments.offline.commands import JobWindow, StartImportance


@bp.get("/experiments/<key>/reports/features")
@requires("analyst")
def feature_report(key: str):
    session = db.session()
    experiment = team_experiment(key)
    start = query_time(request.args.get("since"), "since", 0.0)
    end = query_time(request.args.get("until"), "until", clock.now() + 1.0)
    if not start < end:
        raise ValidationFailed.field("until", "must be after since")
    job_id = f"tailor-{uuid.uuid4().hex[:12]}"
    job = service.start_importance(session, experiment, StartImportance(
        job_id, JobWindow("Tailor report", start, end)))
    jobs.run(session, job.id, service.compute_importance)
    session.refresh(job)
    return jsonify({"experiment": key, "id": job_id, "status": job.status,
                    "since": clock.iso(start), "until": clock.iso(end),
                    "error": job.error, **(job.result or {})})
