"""`POST /bench/noop`: the ceiling of bench/rank.py (parse a JSON body, answer a small JSON,
no database), registered only when the config `BENCH_NOOP` is true."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from app.http import json_body

bp = Blueprint("bench", __name__)


@bp.post("/bench/noop")
def noop():
    body = json_body()
    return jsonify({"ok": True, "fields": len(body) if isinstance(body, dict) else 0})


def init_app(app: Flask) -> None:
    if app.config.get("BENCH_NOOP"):
        app.register_blueprint(bp)
