"""API key management for admins: create, list, revoke, rotate (each one audited)."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires
from app.http import json_body
from experiments import audit, clock, keys
from experiments.errors import ValidationFailed
from experiments.models import ApiKey, Team

KEY_FIELDS = {"scope", "name", "default_experiment", "rate_limits"}


def _serialize(key: ApiKey) -> dict:
    return {"key_id": key.key_id, "scope": key.scope, "name": key.name,
            "default_experiment": key.default_experiment, "rate_limits": key.rate_limits,
            "created_at": clock.iso(key.created_at), "last_used_at": clock.iso(key.last_used_at),
            "revoked_at": clock.iso(key.revoked_at)}


@bp.post("/keys")
@requires("admin")
def create_key():
    principal = current_principal()
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    for field in sorted(set(body) - KEY_FIELDS):
        raise ValidationFailed.field(field, "unknown field")
    session = db.session()
    plain, row = keys.create_key(
        session, session.get(Team, principal.team_id), body.get("scope"), name=body.get("name"),
        default_experiment=body.get("default_experiment"), rate_limits=body.get("rate_limits"))
    audit.record(session, principal, "key.create", row.key_id, {"scope": row.scope})
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
    principal = current_principal()
    session = db.session()
    was_active = keys.get_key(session, principal.team_id, key_id).revoked_at is None
    row = keys.revoke_key(session, principal.team_id, key_id, keep_an_admin=True)
    if was_active:
        audit.record(session, principal, "key.revoke", key_id, {"scope": row.scope})
    session.commit()
    return jsonify(_serialize(row))


@bp.post("/keys/<key_id>/rotate")
@requires("admin")
def rotate_key(key_id: str):
    principal = current_principal()
    session = db.session()
    plain, new, old = keys.rotate_key(session, principal.team_id, key_id)
    audit.record(session, principal, "key.rotate", old.key_id,
                 {"scope": old.scope, "new_key_id": new.key_id})
    session.commit()
    return jsonify({**_serialize(new), "key": plain, "replaces": old.key_id}), 201
