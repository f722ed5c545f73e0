"""The decision log, as logged (audit)."""

from __future__ import annotations

from flask import current_app, jsonify, request

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.errors import APIError
from app.http import int_arg
from experiments import audit, clock, decision_log, explanations, pii
from experiments.query_names import check_names

# A misspelt filter (`?unitid=`) must not answer every unit's decisions as if they were one's.
PARAMETERS = ("unit_id", "since", "after", "limit", "explain")


@bp.get("/experiments/<key>/decisions")
@requires("analyst")
def list_decisions(key: str):
    session = db.session()
    experiment = team_experiment(key)
    check_names(request.args, PARAMETERS)
    since = request.args.get("since")
    try:
        since_ts = clock.parse_iso(since) if since else None
    except ValueError:
        raise APIError(400, "validation_error", "since must be an ISO 8601 timestamp",
                       [{"field": "since", "message": "must be ISO 8601"}]) from None
    unit = _stored_unit(experiment)
    page = decision_log.page(
        session, experiment.id, unit_id=unit, since=since_ts,
        after=int_arg("after", 0, 0, 2**62), limit=int_arg("limit", 100, 1, 1000))
    if unit:  # a unit's decisions are personal data: who read them, and when, is kept
        audit.record_access(session, current_principal(), "decisions.read", key, {
            "unit": pii.keyed_hash(current_principal().pii_salt, unit), "since": since,
            "returned": len(page["decisions"])})
    if request.args.get("explain") in ("1", "true"):
        # Each bandit decision's top contributions, with the model version that decided.
        policies = current_app.extensions["tailor.policies"]
        for decision in page["decisions"]:
            decision["explanation"] = explanations.for_decision(session, policies,
                                                                experiment, decision)
    return jsonify(page)


def _stored_unit(experiment) -> str | None:
    # A clear unit id finds decisions whose unit was logged as the team's keyed hash.
    unit_id = request.args.get("unit_id")
    if not unit_id:
        return unit_id
    return pii.stored_unit(experiment.settings.pii, current_principal().pii_salt, unit_id)
