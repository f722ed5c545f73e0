"""The plain-Flask no-op, baseline of bench/rank.py, bench/rank_cpu.py and bench/soak.py.

A minimal Flask app with nothing of Tailor's: no hooks, no database, no metrics, no
authentication, no error renderer. `POST /bench/noop` parses the JSON body with Flask's
own `request.get_json()` and answers with `jsonify` what Tailor's no-op answers
(app/benchmark.py): the body's event id (the load generator matches answers to requests
by it) and its number of top-level fields. Both no-ops receive the very body rank
receives, so Tailor's no-op minus this one is the cost of Tailor's request machinery,
and rank minus Tailor's no-op the cost of ranking. `bench._servers.PlainServed` serves it
with the gunicorn command line of `tailor serve`.
"""

from __future__ import annotations

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/bench/noop")
    def noop():
        body = request.get_json()
        if not isinstance(body, dict):
            return jsonify({"ok": True, "fields": 0})
        return jsonify({"ok": True, "event_id": body.get("event_id"), "fields": len(body)})

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    return app
