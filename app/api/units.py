"""The right to erasure: delete a unit's decisions and rewards across the team."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires
from experiments import erasure


@bp.delete("/units/<unit_id>")
@requires("admin")
def erase_unit(unit_id: str):
    principal = current_principal()
    result = erasure.erase_unit(db.session(), principal, unit_id, principal.pii_salt)
    return jsonify({"erased": True, **result.as_dict()})
