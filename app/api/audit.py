"""The team's audit log (admin), oldest first, paged by entry id."""

from __future__ import annotations

from flask import jsonify, request

from app import db
from app.api import bp
from app.auth import current_principal, requires
from app.http import int_arg
from experiments import audit
from experiments.query_names import check_names

PARAMETERS = ("action", "after", "limit")  # any other (`?actoin=`) is a 400, not ignored


@bp.get("/audit")
@requires("admin")
def audit_log():
    check_names(request.args, PARAMETERS)
    page = audit.page(db.session(), current_principal().team_id,
                      after=int_arg("after", 0, 0, 2**62), limit=int_arg("limit", 100, 1, 1000),
                      action=request.args.get("action") or None)
    return jsonify(page)
