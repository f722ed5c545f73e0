"""Operations endpoints: liveness, readiness, the OpenAPI document."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from app import db, migrate
from app.errors import error_response
from app.openapi import spec

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    engine = db.engine_of(current_app)
    try:
        revision = migrate.current_revision(engine)
    except sa.exc.DBAPIError as exc:
        return error_response(503, "unavailable", f"database unreachable: {exc.orig}",
                              headers={"Retry-After": "1"})
    heads = migrate.heads()
    if revision not in heads:
        return error_response(503, "not_migrated",
                              f"database at revision {revision}, code expects {heads}")
    return jsonify({"status": "ready", "database": engine.dialect.name, "revision": revision})


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec())
