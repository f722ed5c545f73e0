"""The Python SDK (sdk/python, `tailor_client`) against a real gunicorn serving a SQLite file:
round trip, the service stopped mid-run (fallback, queued rewards, recovery after restart,
every reward stored exactly once) and 429 with Retry-After."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tailor_client import TailorClient, TailorRequestError, TailorUnavailable

from app.db import make_engine
from app.migrate import upgrade
from experiments import keys
from tests.e2e.server import Server, tailor

pytestmark = pytest.mark.e2e

EXPERIMENT = {"key": "hero", "actions": [{"id": "a", "features": {"c": "1"}},
                                         {"id": "b", "features": {"c": "2"}}],
              "reward": {"events": {"click": 1.0, "purchase": "value"}},
              "learner": {"exploration": "epsilon", "params": {"reward_range": [0, 100]}},
              "unit_field": "user_id"}


@contextmanager
def database(url: str) -> Iterator[Session]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


@dataclass
class Service:
    url: str
    server: Server
    client_key: str
    admin_key: str


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One gunicorn (one worker, so per-worker rate limits are exact) for this module; the
    client key comes from `tailor keys create`, as a user would make it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sdk')}/tailor.db"
    with database(url) as session:
        upgrade(session.get_bind())
        admin, _ = keys.create_key(session, keys.get_or_create_team(session, "shop"), "admin")
        session.commit()
    server = Server(url, workers=1).start()
    made = requests.post(f"{server.url}/v1/experiments", json=EXPERIMENT, timeout=10,
                         headers={"Authorization": f"Bearer {admin}"})
    assert made.status_code == 201, made.text
    client_key = tailor(url, "keys", "create", "--team", "shop", "--scope", "client",
                        "--experiment", "hero")
    running = Service(url, server, client_key, admin)
    yield running
    running.server.stop()


def rows(database_url: str, sql: str) -> list:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def test_rank_reward_activate_round_trip(service):
    rejected = []
    with TailorClient(service.server.url, service.client_key, "hero", flush_interval=0.1,
                      on_rejected=lambda item, error: rejected.append((item, error))) as client:
        first = client.rank({"user_id": "u-1", "hour": 9}, actions=["a", "b"])
        assert not first.fallback and first.action_id in {"a", "b"}
        assert first.ranking[0][0] == first.action_id and 0 < first.probability <= 1
        again = client.rank({"user_id": "u-1", "hour": 9}, actions=["a", "b"],
                            event_id=first.event_id)
        assert again == first  # the same event id is the same decision
        client.reward(first.event_id, type="click")
        client.reward(first.event_id, 20.0, type="purchase", wait=True)
        deferred = client.rank({"user_id": "u-2"}, defer_activation=True)
        client.activate(deferred.event_id)
        with pytest.raises(TailorRequestError) as caught:
            client.reward(first.event_id, type="refund", wait=True)
        assert caught.value.status == 400 and caught.value.code == "validation_error"
        client.reward("never-ranked", type="click")
        assert client.flush(timeout=10)
    assert [item["event_id"] for item, _ in rejected] == ["never-ranked"]
    stored = rows(service.url, "SELECT type, value FROM reward_events "
                               f"WHERE event_id = '{first.event_id}'")
    assert sorted((r.type, r.value) for r in stored) == [("click", 1.0), ("purchase", 20.0)]
    activated = rows(service.url, "SELECT activated_at FROM decisions WHERE event_id = "
                                  f"'{deferred.event_id}'")
    assert activated[0].activated_at is not None


def test_service_down_mid_run_fallback_then_recovery_exactly_once(service, caplog):
    caplog.set_level(logging.INFO, logger="tailor_client")
    client = TailorClient(service.server.url, service.client_key, "hero", timeout=1.0,
                          retries=1, rank_deadline=2.0, fallback_action="a",
                          flush_interval=0.1, batch_size=5, max_backoff=0.5)
    queued: list[str] = []
    ranked = [client.rank({"user_id": f"down-{i}"}) for i in range(6)]
    assert not any(r.fallback for r in ranked)
    queued += [client.reward(r.event_id, type="click") for r in ranked[:3]]
    assert client.flush(timeout=10)
    service.server.stop()
    try:
        down = client.rank({"user_id": "down-9"})
        assert down.fallback and down.action_id == "a" and down.arm == "fallback"
        assert "fallback" in caplog.text and down.event_id in caplog.text
        client.reward(down.event_id, type="click")  # not sent: the service never logged it
        queued += [client.reward(r.event_id, type="click") for r in ranked[3:]]
        queued += [client.reward(r.event_id, 5.0, type="purchase") for r in ranked]
        assert not client.flush(timeout=0.5)  # the service is down: kept, not dropped
        assert len(client.pending_rewards()) == 9
    finally:
        service.server = Server(service.url, workers=1, port=service.server.port).start()
    assert client.flush(timeout=20)
    assert not client.rank({"user_id": "down-10"}).fallback
    assert client.close(timeout=10)
    events = ", ".join(f"'{r.event_id}'" for r in ranked + [down])
    stored = rows(service.url, f"SELECT idempotency_key FROM reward_events "
                               f"WHERE event_id IN ({events})")
    counts = Counter(r.idempotency_key for r in stored)
    assert set(counts) == set(queued) and set(counts.values()) == {1}
    logged = {r.event_id for r in rows(service.url, "SELECT event_id FROM decisions")}
    assert down.event_id not in logged


def test_429_is_retried_after_retry_after(service):
    with database(service.url) as session:
        team = keys.find_team(session, "shop")
        limited, _ = keys.create_key(session, team, "client",
                                     rate_limits={"rank": {"rate": 1, "burst": 1}})
        session.commit()
    with TailorClient(service.server.url, limited, "hero") as client:
        began = time.monotonic()
        results = [client.rank({"user_id": f"limited-{i}"}) for i in range(2)]
        elapsed = time.monotonic() - began
    assert not any(r.fallback for r in results)
    assert elapsed >= 0.9  # waited for the token Retry-After announced
    successes = 0
    with TailorClient(service.server.url, limited, "hero", retries=0) as client:
        with pytest.raises(TailorUnavailable):  # no retry, no fallback: it raises
            for i in range(3):
                client.rank({"user_id": f"limited-x{i}"})
                successes += 1
    count = rows(service.url, "SELECT count(*) AS n FROM decisions "
                              "WHERE unit_id LIKE 'limited-%'")[0].n
    assert count == 2 + successes
