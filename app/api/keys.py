"""API key management for admins: create, list, revoke, rotate (each one audited by
`experiments.key_commands`, which owns the transaction)."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires
from app.http import command_body
from experiments import clock, key_commands, keys
from experiments.models import ApiKey


def _serialize(key: ApiKey) -> dict:
    return {"key_id": key.key_id, "scope": key.scope, "name": key.name,
            "default_experiment": key.default_experiment, "rate_limits": key.rate_limits,
            "created_at": clock.iso(key.created_at), "last_used_at": clock.iso(key.last_used_at),
            "revoked_at": clock.iso(key.revoked_at)}


@bp.post("/keys")
@requires("admin")
def create_key():
    body = command_body(key_commands.CreateKey)
    command = key_commands.CreateKey(actor=current_principal(), scope=body.get("scope"),
                                     name=body.get("name"),
                                     default_experiment=body.get("default_experiment"),
                                     rate_limits=body.get("rate_limits"))
    plain, row = key_commands.create(db.session(), command)
    return jsonify({**_serialize(row), "key": plain}), 201


@bp.get("/keys")
@requires("admin")
def list_keys():
    rows = keys.list_keys(db.session(), current_principal().team_id)
    return jsonify({"keys": [_serialize(k) for k in rows]})


@bp.delete("/keys/<key_id>")
@requires("admin")
def revoke_key(key_id: str):
    row = key_commands.revoke(db.session(), key_commands.RevokeKey(
        actor=current_principal(), key_id=key_id))
    return jsonify(_serialize(row))


@bp.post("/keys/<key_id>/rotate")
@requires("admin")
def rotate_key(key_id: str):
    plain, new, old = key_commands.rotate(db.session(), key_commands.RotateKey(
        actor=current_principal(), key_id=key_id))
    return jsonify({**_serialize(new), "key": plain, "replaces": old.key_id}), 201
