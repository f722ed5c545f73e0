"""A key's last use is written off the request path (experiments/last_used.py):
authentication commits nothing, and the background writer brings `last_used_at` up to
date within its interval (KEY_LAST_USED_SECONDS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import auth, create_app
from app.db import DIRECT, dispose, engine_of
from experiments import last_used
from experiments.models import ApiKey
from tests.conftest import make_team
from tests.integration.helpers import register


def bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


@contextmanager
def commits_in_this_thread(app) -> Iterator[list[str]]:
    """Every commit on the app's engines or of any Session made by this thread."""
    seen: list[str] = []
    me = threading.get_ident()

    def on_engine_commit(_conn) -> None:
        if threading.get_ident() == me:
            seen.append("connection")

    def on_session_commit(_session) -> None:
        if threading.get_ident() == me:
            seen.append("session")

    engines = [engine_of(app), app.extensions[DIRECT].engine]
    for engine in engines:
        sa.event.listen(engine, "commit", on_engine_commit)
    sa.event.listen(Session, "after_commit", on_session_commit)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "commit", on_engine_commit)
        sa.event.remove(Session, "after_commit", on_session_commit)


def stored_last_use(app, plain: str) -> float | None:
    with engine_of(app).connect() as conn:
        return conn.execute(sa.select(ApiKey.last_used_at)
                            .where(ApiKey.key_id == plain.split("_")[1])).scalar_one()


def wait_for_last_use(app, plain: str, after: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = stored_last_use(app, plain)
        if found is not None and found >= after:
            return found
        time.sleep(0.05)
    raise AssertionError(f"last_used_at did not reach {after} within {timeout} s")


@pytest.fixture
def fast_app(database_url: str):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "MODEL_CHECK_SECONDS": 0.0, "KEY_LAST_USED_SECONDS": 0.2})
    yield app
    dispose(app)


def test_authentication_commits_nothing_on_a_keys_first_use(app, team):
    # Before: a key's first use (last_used_at NULL) committed its last-used time inside
    # authentication, on the request path.
    assert stored_last_use(app, team.client) is None
    for plain, cached in ((team.client, True), (team.analyst, False)):
        with app.test_request_context(headers=bearer(plain)), \
                commits_in_this_thread(app) as seen:
            principal = auth.current_principal(cached)
        assert principal.key_id == plain.split("_")[1]
        assert seen == []
        assert plain.split("_")[1] in app.extensions[auth.LAST_USED].pending()
    assert stored_last_use(app, team.client) is None  # written later, by the flusher


def test_a_read_request_commits_nothing(app, client, team):
    register(client, team)
    with commits_in_this_thread(app) as seen:
        answer = client.get("/v1/experiments", headers=team.auth("analyst"))
    assert answer.status_code == 200
    assert seen == []


def test_last_used_at_advances_within_the_flush_interval(fast_app):
    team = make_team(fast_app, "team-a")
    client = fast_app.test_client()
    register(client, team)
    started = time.time()
    assert client.post("/v1/experiments/homepage-hero/rank", json={"event_id": "e1"},
                       headers=team.auth("client")).status_code == 200
    first = wait_for_last_use(fast_app, team.client, started, timeout=5.0)
    assert started <= first <= time.time()
    time.sleep(0.05)
    again = time.time()
    assert client.post("/v1/experiments/homepage-hero/rank", json={"event_id": "e2"},
                       headers=team.auth("client")).status_code == 200
    second = wait_for_last_use(fast_app, team.client, again, timeout=5.0)
    assert first < second <= time.time()


def test_last_used_at_only_moves_forward(app, team):
    recorder = last_used.LastUsed(engine_of(app), interval=3600)
    key_id = team.admin.split("_")[1]
    recorder.record(key_id, 2000.0)
    assert recorder.flush() == 1
    recorder.record(key_id, 1000.0)  # another worker's older use, written later
    recorder.flush()
    assert stored_last_use(app, team.admin) == 2000.0


def test_a_write_leaves_no_connection_open(app, team):
    # The writer may run after the app's engine was disposed (shutdown, tests): it closes
    # the connection it used instead of leaving it in the pool.
    engine = engine_of(app)
    recorder = last_used.LastUsed(engine, interval=3600)
    dispose(app)
    opened, closed = [], []
    sa.event.listen(engine, "connect", lambda *_: opened.append(1))
    sa.event.listen(engine, "close", lambda *_: closed.append(1))
    recorder.record(team.admin.split("_")[1], 3000.0)
    assert recorder.flush() == 1
    assert len(opened) == len(closed) == 1
    assert stored_last_use(app, team.admin) == 3000.0


def test_a_failed_write_keeps_the_uses_for_the_next_one():
    recorder = last_used.LastUsed(sa.create_engine("sqlite://"), interval=3600)  # no tables
    recorder.record("k1", 1000.0)
    assert recorder.flush() == 0
    recorder.record("k1", 900.0)
    assert recorder.pending() == {"k1": 1000.0}
    recorder.engine.dispose()
