"""Analyst reports: the A/B significance report as JSON or CSV."""

from __future__ import annotations

from flask import Response, jsonify, request

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.errors import APIError
from experiments import audit
from experiments.reports import build_report, parse_options, to_csv

FORMATS = ("json", "csv")


@bp.get("/experiments/<key>/reports/ab")
@requires("analyst")
def ab_report(key: str):
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise APIError(400, "validation_error", "format must be json or csv",
                       [{"field": "format", "message": "must be json or csv"}])
    options = parse_options(request.args, extra=("format",))
    session = db.session()
    experiment = team_experiment(key)
    report = build_report(session, experiment, options)
    if fmt == "csv":
        audit.record_access(session, current_principal(), "report.export", key,
                            {"report": "ab", "format": "csv"})
        return csv_response(to_csv(report), f"{key}-ab-report.csv")
    return jsonify(report)


def csv_response(text: str, filename: str) -> Response:
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
