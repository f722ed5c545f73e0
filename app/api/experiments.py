"""Experiment registry endpoints."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.http import json_body
from experiments import audit, clock, registry
from experiments.validation import notes, validate_patch


@bp.post("/experiments")
@requires("admin")
def create_experiment():
    principal = current_principal()
    session, body = db.session(), json_body()
    # Added first so registry.create's commit includes it; a failed create rolls it back.
    audit.record(session, principal, "experiment.create",
                 str(body.get("key")) if isinstance(body, dict) else None)
    experiment = registry.create(session, principal.team_id, body, principal.key_id)
    return jsonify({**registry.serialize(experiment),
                    "notes": notes(body, experiment.config)}), 201


@bp.get("/experiments")
@requires("analyst")
def list_experiments():
    rows = registry.list_for_team(db.session(), current_principal().team_id)
    return jsonify({"experiments": [registry.serialize(e) for e in rows]})


@bp.get("/experiments/<key>")
@requires("analyst")
def get_experiment(key: str):
    return jsonify(registry.serialize(team_experiment(key)))


@bp.patch("/experiments/<key>")
@requires("admin")
def patch_experiment(key: str):
    principal = current_principal()
    session = db.session()
    experiment = team_experiment(key)
    body = json_body()
    changed = _changed_fields(experiment.config, body)
    if changed:  # recorded in the same transaction as the change (registry.patch commits)
        audit.record(session, principal, "experiment.update", key,
                     {"fields": changed, "version": experiment.version + 1})
    registry.patch(session, experiment, body, principal.key_id)
    return jsonify(registry.serialize(experiment))


def _changed_fields(current: dict, body: object) -> list[str]:
    config = validate_patch(current, body)
    return sorted(k for k in body if current.get(k) != config.get(k))  # type: ignore[union-attr]


@bp.get("/experiments/<key>/history")
@requires("analyst")
def experiment_history(key: str):
    session = db.session()
    experiment = team_experiment(key)
    return jsonify({"history": [
        {"version": h.version, "change": h.change, "actor": h.actor, "details": h.details,
         "config": h.config, "created_at": clock.iso(h.created_at)}
        for h in registry.history(session, experiment)]})
