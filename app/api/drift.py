"""Drift on Tailor's own API: `GET /v1/experiments/{key}/reports/drift`.

Computes, between a reference window and a recent one, each context feature's population
stability index and the reward-rate and model-quality drift (experiments.drift), and
exports the features' PSI in `/metrics` (the newest report's, set here and never on
scrape).
"""

from __future__ import annotations

import math

from flask import jsonify, request

from app import db, metrics
from app.api import bp
from app.auth import requires, team_experiment
from app.http import query_time
from experiments import clock, drift
from experiments.models import Team


@bp.get("/experiments/<key>/reports/drift")
@requires("analyst")
def drift_report(key: str):
    session = db.session()
    experiment = team_experiment(key)  # first: another team's experiment is a 404, whatever
    drift.check(request.args)          # the query says
    # NaN marks a bound not given: its default depends on the others (drift.options).
    given = {name: query_time(request.args.get(name), name, math.nan)
             for name in drift.options.TIMES}
    now = clock.now()
    options = drift.parse(request.args, {n: t for n, t in given.items()
                                         if not math.isnan(t)}, now)
    report = drift.build_drift(session, experiment, options, now)
    team = session.get(Team, experiment.team_id)
    metrics.record_drift(team.name if team else "", key, report["features"])
    return jsonify(report)
