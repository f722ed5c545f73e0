"""Off-policy evaluation, bandit health, promotion and rollback."""

from __future__ import annotations

from flask import current_app, jsonify, request

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.http import command_body
from experiments import promotion
from experiments.ope_report import build_report, health_report, parse_options, stored
from experiments.ope_report.supplied import listing


@bp.get("/experiments/<key>/reports/ope")
@requires("analyst")
def ope_report(key: str):
    options = parse_options(request.args, request.args.getlist("candidates"))
    return jsonify(build_report(db.session(), team_experiment(key), options))


@bp.get("/experiments/<key>/reports/ope/<report_id>")
@requires("analyst")
def stored_ope_report(key: str, report_id: str):
    return jsonify(stored(db.session(), team_experiment(key), report_id))


@bp.get("/experiments/<key>/reports/health")
@requires("analyst")
def bandit_health(key: str):
    return jsonify(health_report(db.session(), team_experiment(key)))


@bp.get("/experiments/<key>/candidates")
@requires("analyst")
def list_candidates(key: str):
    infos = listing(db.session(), team_experiment(key))
    return jsonify({"candidates": [info.to_dict() for info in infos]})


@bp.post("/experiments/<key>/promote")
@requires("admin")
def promote(key: str):
    rules = promotion.Rules(
        max_age_seconds=current_app.config["PROMOTION_MAX_REPORT_AGE_SECONDS"],
        max_growth=current_app.config["PROMOTION_MAX_DECISION_GROWTH"])
    experiment = team_experiment(key)
    body = command_body(promotion.Promote)
    result = promotion.promote(db.session(), promotion.Promote(
        actor=current_principal(), experiment=experiment, rules=rules,
        candidate=body.get("candidate"), force=body.get("force", False),
        reason=body.get("reason")))
    return jsonify(result)


@bp.post("/experiments/<key>/rollback")
@requires("admin")
def rollback(key: str):
    return jsonify(promotion.rollback(db.session(), team_experiment(key), current_principal()))
