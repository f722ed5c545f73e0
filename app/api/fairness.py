"""The fairness report: `GET /v1/experiments/{key}/reports/fairness?attribute=...`.

Reward and action exposure per value of a context attribute and arm, with tests of
disparity, and a counterfactual audit of the current model (docs/fairness.md).
"""

from __future__ import annotations

from flask import current_app, jsonify, request

from app import db
from app.api import bp
from app.auth import requires, team_experiment
from app.http import query_time
from experiments import clock
from experiments.errors import ValidationFailed
from experiments.fairness import build_fairness, parse_options


@bp.get("/experiments/<key>/reports/fairness")
@requires("analyst")
def fairness_report(key: str):
    session = db.session()
    experiment = team_experiment(key)  # first: another team's experiment is a 404, whatever
    options = parse_options(request.args)  # the query says
    now = clock.now()
    start = query_time(request.args.get("since"), "since", 0.0)
    end = min(query_time(request.args.get("until"), "until", now), now)
    if not start < end:
        raise ValidationFailed.field("until", "must be after since (and since before now)")
    policies = current_app.extensions["tailor.policies"]
    return jsonify(build_fairness(session, experiment, policies, options, start, end))
