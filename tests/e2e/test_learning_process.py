"""`tailor learn` beside gunicorn: rewards reach a snapshot that the workers serve, and
SIGTERM stops the learner cleanly (exit 0, lease released)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import pytest
import requests
from sqlalchemy.orm import Session

from app.db import make_engine
from experiments import keys
from tests.e2e.server import BIN, ROOT, Server
from tests.integration.helpers import experiment_body

LEARNER_ENV = {"TAILOR_LEARNER_GRACE_SECONDS": "0", "TAILOR_LEARNER_SNAPSHOT_SECONDS": "0.2"}


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail("timed out")


@pytest.mark.e2e
def test_learner_process_feeds_the_workers_and_stops_cleanly(database_url):
    auth = _keys(database_url)
    server = Server(database_url, extra_env={"TAILOR_MODEL_CHECK_SECONDS": "0.2"}).start()
    log = tempfile.TemporaryFile("w+")
    learner = subprocess.Popen([str(BIN / "tailor"), "learn"], cwd=ROOT, text=True,
                               env={**os.environ, **LEARNER_ENV, "DATABASE_URL": database_url},
                               stderr=log)
    try:
        url = server.url
        body = experiment_body(reward={"events": {"click": 1.0}, "window_seconds": 0.3},
                               arms={"bandit": 1.0})
        assert requests.post(f"{url}/v1/experiments", json=body, headers=auth["admin"],
                             timeout=10).status_code == 201
        for index in range(10):
            answer = requests.post(f"{url}/v1/experiments/homepage-hero/rank",
                                   json={"context": {"user_id": f"u{index}"}},
                                   headers=auth["client"], timeout=10).json()
            assert answer["model_version"] == 0
            requests.post(f"{url}/v1/events/{answer['event_id']}/rewards",
                          json={"type": "click"}, headers=auth["client"], timeout=10)

        def status():
            return requests.get(f"{url}/v1/experiments/homepage-hero/learning",
                                headers=auth["analyst"], timeout=10).json()

        learned = _wait_for(lambda: (s := status())["examples_learned"] == 10 and s)
        assert learned["learner"]["active"] and learned["pending_decisions"] == 0

        def served_version():
            return requests.post(f"{url}/v1/experiments/homepage-hero/rank",
                                 json={"context": {"user_id": "later"}},
                                 headers=auth["client"], timeout=10).json()["model_version"]

        assert _wait_for(lambda: served_version() == learned["model_version"])
        learner.send_signal(signal.SIGTERM)
        assert learner.wait(15) == 0, _read(log)
        assert status()["learner"]["active"] is False  # the lease was released
    finally:
        if learner.poll() is None:
            learner.kill()
            learner.wait()
        server.stop()
        log.close()


def _keys(database_url: str) -> dict[str, dict[str, str]]:
    """One key per scope, made in-process (a CLI start costs seconds on a busy machine)."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        team = keys.get_or_create_team(session, "shop")
        made = {scope: keys.create_key(session, team, scope)[0] for scope in keys.SCOPES}
        session.commit()
    engine.dispose()
    return {scope: {"Authorization": f"Bearer {key}"} for scope, key in made.items()}


def _read(log) -> str:
    log.seek(0)
    return log.read()
