"""API key management for admins."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires
from app.http import json_body
from experiments import clock, keys
from experiments.errors import ValidationFailed
from experiments.models import ApiKey, Team


def _serialize(key: ApiKey) -> dict:
    return {"key_id": key.key_id, "scope": key.scope, "name": key.name,
            "default_experiment": key.default_experiment,
            "created_at": clock.iso(key.created_at), "last_used_at": clock.iso(key.last_used_at),
            "revoked_at": clock.iso(key.revoked_at)}


@bp.post("/keys")
@requires("admin")
def create_key():
    principal = current_principal()
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    session = db.session()
    team = session.get(Team, principal.team_id)
    plain, row = keys.create_key(session, team, body.get("scope"), name=body.get("name"),
                                 default_experiment=body.get("default_experiment"))
    session.commit()
    return jsonify({**_serialize(row), "key": plain}), 201


@bp.get("/keys")
@requires("admin")
def list_keys():
    rows = keys.list_keys(db.session(), current_principal().team_id)
    return jsonify({"keys": [_serialize(k) for k in rows]})


@bp.delete("/keys/<key_id>")
@requires("admin")
def revoke_key(key_id: str):
    session = db.session()
    row = keys.revoke_key(session, current_principal().team_id, key_id)
    session.commit()
    return jsonify(_serialize(row))
