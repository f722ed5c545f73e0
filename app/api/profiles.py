"""Unit profiles (the feature store): stored unit features that rank merges in."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires
from app.http import json_body
from experiments import profile_commands, profiles


@bp.put("/units/<unit_id>/profile")
@requires("client")
def put_profile(unit_id: str):
    written = profile_commands.put(db.session(), profile_commands.PutProfile(
        actor=current_principal(), unit_id=unit_id, profile=json_body()))
    return jsonify(written.as_dict())


@bp.patch("/units/<unit_id>/profile")
@requires("client")
def patch_profile(unit_id: str):
    written = profile_commands.patch(db.session(), profile_commands.PatchProfile(
        actor=current_principal(), unit_id=unit_id, changes=json_body()))
    return jsonify(written.as_dict())


@bp.get("/units/<unit_id>/profile")
@requires("analyst")
def get_profile(unit_id: str):
    principal = current_principal()
    return jsonify(profiles.read(db.session(), principal, principal.pii_salt,
                                 unit_id).as_dict())


@bp.delete("/units/<unit_id>/profile")
@requires("admin")
def delete_profile(unit_id: str):
    principal = current_principal()
    profiles.delete(db.session(), principal, principal.pii_salt, unit_id)
    return jsonify({"unit_id": unit_id, "deleted": True})


@bp.post("/profiles")
@requires("client")
def put_profiles():
    written = profile_commands.put_many(db.session(), profile_commands.PutProfiles(
        actor=current_principal(), batch=json_body()))
    return jsonify({"profiles": [w.as_dict() for w in written]})
