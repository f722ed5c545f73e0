"""Feature importances (`featureImportances`, PUT/GET/list/DELETE), computed in the
background by `experiments.offline.importance` on the decisions of the window."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app import db
from app.auth import current_principal
from app.http import json_body
from app.personalizer import job_bodies, jobviews
from app.personalizer.routes import experiment, route
from experiments.models import OfflineJob
from experiments.offline import jobs, service

KIND = "featureimportance"


def document(job: OfflineJob) -> dict[str, Any]:
    out = jobviews.header(job)
    if job.result is not None:
        out["featureScores"] = job.result["featureScores"]
        out["nDecisions"] = job.result["n_decisions"]
    return out


@route("PUT", "/featureImportances/<feature_importance_id>", scope="admin",
       invalid="InvalidRequest", summary="Start a feature importance job", status="200")
def create_feature_importance(feature_importance_id: str) -> Response:
    target = experiment()  # first: another team's resource is a 404, whatever the body
    command = job_bodies.importance(feature_importance_id, json_body())
    job = service.start_importance(db.session(), target, command)
    return jsonify(document(jobviews.started(job)))


@route("GET", "/featureImportances/<feature_importance_id>", scope="admin",
       summary="A feature importance", status="200")
def get_feature_importance(feature_importance_id: str) -> Response:
    return jsonify(document(jobs.find(db.session(), experiment(), KIND,
                                      feature_importance_id)))


@route("GET", "/featureImportances", scope="admin", summary="Feature importances",
       status="200")
def list_feature_importances() -> Response:
    rows = jobviews.page(experiment(), KIND)
    return jsonify({"value": [jobviews.header(job) for job in rows], "nextLink": None})


@route("DELETE", "/featureImportances/<feature_importance_id>", scope="admin",
       summary="Delete a feature importance", status="204")
def delete_feature_importance(feature_importance_id: str) -> Response:
    jobs.delete(db.session(), experiment(), KIND, feature_importance_id, current_principal())
    return Response(status=204)
