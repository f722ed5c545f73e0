"""`POST /bench/noop`, the ceiling of bench/rank.py: registered only when asked for, and it
echoes the event id (the load generator matches answers to requests by it)."""

from __future__ import annotations

from app import create_app


def _client(enabled: bool):
    return create_app({"DATABASE_URL": "sqlite://", "TESTING": True,
                       "BENCH_NOOP": enabled}).test_client()


def test_the_noop_echoes_the_event_id_and_touches_nothing():
    answer = _client(True).post("/bench/noop", json={"event_id": "run-0-7", "context": {}})
    assert answer.status_code == 200
    assert answer.json == {"ok": True, "event_id": "run-0-7", "fields": 2}


def test_the_noop_is_absent_unless_configured():
    assert _client(False).post("/bench/noop", json={"event_id": "x"}).status_code == 404
