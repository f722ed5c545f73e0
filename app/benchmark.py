"""`POST /bench/noop`: the ceiling of bench/rank.py (parse a JSON body, answer a small JSON,
no database), registered only when the config `BENCH_NOOP` is true. It echoes the body's
`event_id`, as rank does, so that the load generator can match answers to requests."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from app.http import json_body

bp = Blueprint("bench", __name__)


@bp.post("/bench/noop")
def noop():
    body = json_body()
    if not isinstance(body, dict):
        return jsonify({"ok": True, "fields": 0})
    return jsonify({"ok": True, "event_id": body.get("event_id"), "fields": len(body)})


def init_app(app: Flask) -> None:
    if app.config.get("BENCH_NOOP"):
        app.register_blueprint(bp)
