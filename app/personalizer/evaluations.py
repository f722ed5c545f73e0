"""Offline evaluations (`evaluations`, PUT/POST/GET/list/DELETE) and
`configurations/applyFromEvaluation`, on Tailor's OPE (`experiments.offline`).

Under `/personalizer?api-version=2022-09-01-preview` the shapes are 2022's; under the
versioned prefixes (`v1.0`, `v1.1-preview.N`) they are that contract's (`evaluations_v1`:
`POST evaluations` answers 201 with a `Location`; `policyResults`; lower-case statuses).

PUT starts the evaluation in the background and answers 200 with its status (`Running`);
the client polls GET until `Succeeded` (or `Failed`, with `description`). GET's
`startTime`, `endTime`, `intervalInMinutes` (5, 60, 360, 720 or 1440) and `window`
(`Expanding` or `Rolling`) shape the time series only.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, json, jsonify, request, url_for

from app import db
from app.auth import current_principal
from app.http import json_body, query_time
from app.personalizer import evaluations_v1, job_bodies, jobviews
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import API_VERSION, experiment, legacy_contract, route
from experiments import clock
from experiments.models import OfflineJob
from experiments.offline import evaluation, jobs, service
from experiments.promotion import Rules

KIND = "evaluation"
INTERVALS = (5, 60, 360, 720, 1440)
WINDOWS = ("Expanding", "Rolling")


@route("PUT", "/evaluations/<evaluation_id>", scope="admin",
       invalid="InvalidEvaluationContract", summary="Start an offline evaluation",
       status="200")
def create_evaluation(evaluation_id: str) -> Response:
    target = experiment()  # first: another team's resource is a 404, whatever the body
    command = job_bodies.evaluation(evaluation_id, json_body())
    job = service.start_evaluation(db.session(), target, command)
    return jsonify(_document(jobviews.started(job)))


@route("POST", "/evaluations", scope="admin", invalid="InvalidEvaluationContract",
       summary="Start an offline evaluation (v1.0 to v1.1-preview.3)", status="201")
def submit_evaluation() -> Response:
    target = experiment()  # first: another team's resource is a 404, whatever the body
    command = job_bodies.evaluation_v1(json_body())
    job = jobviews.started(service.start_evaluation(db.session(), target, command))
    body = evaluations_v1.document(job) if legacy_contract() else _document(job)
    location = url_for(f"{request.blueprint}.get_evaluation", evaluation_id=job.job_id,
                       **({} if legacy_contract() else {"api-version": API_VERSION}))
    return Response(json.dumps(body), status=201, mimetype="application/json",
                    headers={"Location": location})


def _series_options(job: OfflineJob, window_default: str = "Expanding"
                    ) -> tuple[float, float, int, str]:
    interval = request.args.get("intervalInMinutes") or "5"
    if not interval.isdigit() or int(interval) not in INTERVALS:
        raise PersonalizerError.invalid("intervalInMinutes",
                                        f"must be one of {', '.join(map(str, INTERVALS))}")
    window = request.args.get("window") or window_default
    if window not in WINDOWS:
        raise PersonalizerError.invalid("window", "must be Expanding or Rolling")
    return (query_time(request.args.get("startTime"), "startTime", job.start_time),
            query_time(request.args.get("endTime"), "endTime", job.end_time),
            int(interval), window)


def _document(job: OfflineJob, series: tuple[float, float, int, str] | None = None
              ) -> dict[str, Any]:
    out = {**jobviews.header(job), "evaluationType": "Manual"}
    if job.result is None or series is None:
        return out
    start, end, interval, window = series
    out["optimalPolicy"] = job.result["optimalPolicy"]
    out["content"] = {
        "startTime": clock.iso(start), "endTime": clock.iso(end),
        "intervalInMinutes": interval, "window": window,
        "nDecisions": job.result["n_decisions"],
        "value": [{"name": e["name"], "arguments": e["arguments"],
                   "policySource": e["policySource"], "candidate": e["candidate"],
                   "summary": evaluation.summary(e),
                   "timeseries": {"data": [
                       {**p, "timeStamp": clock.iso(p["timeStamp"])}
                       for p in evaluation.timeseries(e, start, end, interval, window)]},
                   "estimates": e["estimates"]}
                  for e in job.result["policies"]]}
    return out


@route("GET", "/evaluations/<evaluation_id>", scope="admin", summary="An offline evaluation",
       status="200")
def get_evaluation(evaluation_id: str) -> Response:
    job = jobs.find(db.session(), experiment(), KIND, evaluation_id)
    if legacy_contract():  # each interval alone: v1's `summary` entries are aggregates
        return jsonify(evaluations_v1.document(job, _series_options(job, "Rolling")))
    return jsonify(_document(job, _series_options(job)))


@route("GET", "/evaluations", scope="admin", summary="Offline evaluations", status="200")
def list_evaluations() -> Response:
    rows = jobviews.page(experiment(), KIND)
    if legacy_contract():  # v1.0 to v1.1-preview.3: a bare array
        return jsonify([evaluations_v1.document(job) for job in rows])
    return jsonify({"value": [_document(job) for job in rows], "nextLink": None})


@route("DELETE", "/evaluations/<evaluation_id>", scope="admin",
       summary="Delete an offline evaluation", status="204")
def delete_evaluation(evaluation_id: str) -> Response:
    jobs.delete(db.session(), experiment(), KIND, evaluation_id, current_principal())
    return Response(status=204)


@route("POST", "/configurations/applyFromEvaluation", scope="admin",
       invalid="InvalidPolicyConfiguration",
       summary="Make an evaluated policy the learning settings", status="204")
def apply_from_evaluation() -> Response:
    rules = Rules(max_age_seconds=current_app.config["PROMOTION_MAX_REPORT_AGE_SECONDS"],
                  max_growth=current_app.config["PROMOTION_MAX_DECISION_GROWTH"])
    target = experiment()  # first: another team's resource is a 404, whatever the body
    service.apply_from_evaluation(db.session(), target, job_bodies.apply(json_body()),
                                  current_principal(), rules)
    return Response(status=204)
