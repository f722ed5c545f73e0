"""Faults under steady load: kill -9 gunicorn workers, stop and start PostgreSQL (fast and
immediate shutdown), kill the learner; then every acknowledged decision and reward must be
in the database exactly once, as acknowledged.

The default run (`make test`) kills workers for a few seconds on PostgreSQL.
`make test-faults` (TAILOR_FAULTS_FULL=1) kills workers longer, on both backends, and
stops and starts PostgreSQL under load. That PostgreSQL is a private cluster made for the
test (initdb in a temporary directory, its own port), never the server other test runs
share.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.db import make_engine
from bench._servers import Served, create_tenant, postgres_database
from tests.conftest import FAULT_ROW
from tests.faults.driver import Load, check_database
from tests.faults.private_pg import PrivateCluster, bin_dir
from tests.integration.helpers import experiment_body

FULL = os.environ.get("TAILOR_FAULTS_FULL") == "1"
ROOT = Path(__file__).resolve().parents[2]


class Rows:
    """A test's rows of the fault table, kept with its report (tests/conftest.py prints
    the table at the end of the run, also when pytest-xdist ran the test in a worker)."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def append(self, row: str) -> None:
        self.node.user_properties.append((FAULT_ROW, row))


@pytest.fixture
def report(request) -> Rows:
    return Rows(request.node)


def serve_experiment(database_url: str, key: str, team: str,
                     **overrides) -> tuple[Served, str]:
    tenant = create_tenant(database_url, team)
    server = Served(database_url).start()
    response = requests.post(server.url + "/v1/experiments",
                             json=experiment_body(key, **overrides),
                             headers={"Authorization": f"Bearer {tenant.admin}"}, timeout=30)
    assert response.status_code == 201, response.text
    return server, tenant.client


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def gunicorn_workers(server: Served) -> list[int]:
    """The worker processes of the gunicorn that `server`'s `tailor serve` started."""
    pids = server.pids()
    master = next(p for p in pids if _parent(p) == server.process.pid
                  and b"gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes())
    return [p for p in pids if _parent(p) == master]


def rank_200_total(server: Served) -> float:
    text = requests.get(server.url + "/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "tailor_http_requests_total"
               and s.labels.get("endpoint") == "/v1/experiments/<key>/rank"
               and s.labels.get("status") == "200")


def assert_exactly_once(figures, load: Load) -> None:
    assert load.unexpected == [], load.unexpected[:5]
    assert figures.lost == 0 and figures.duplicated == 0 and figures.mismatched == 0, figures
    assert figures.found == figures.acknowledged


def test_kill_workers_under_load(database_url, report):
    backend = database_url.split(":", 1)[0].split("+")[0]
    if backend == "sqlite" and not FULL:
        pytest.skip("the short run kills workers on PostgreSQL only; make test-faults: both")
    server, key = serve_experiment(database_url, "faults-kill", "faults")
    duration, every = (20.0, 2.0) if FULL else (5.0, 1.25)
    kills = 0
    try:
        load = Load(server.url, key, "faults-kill", prefix="kill").start()
        deadline = time.monotonic() + duration
        time.sleep(every)
        while time.monotonic() < deadline:
            os.kill(random.choice(gunicorn_workers(server)), signal.SIGKILL)
            kills += 1
            time.sleep(every)
        load.stop()
        counted = rank_200_total(server)
    finally:
        server.stop()
    figures = check_database(database_url, load)
    statuses = Counter(a.status for a in load.attempts)
    report.append(figures.row(f"kill -9 a worker every {every:g} s, {duration:g} s ({backend})",
                              f"{kills} kills; answers {dict(statuses)}"))
    assert_exactly_once(figures, load)
    assert len(load.acked_ranks) > 20, "the service hardly answered"
    # /metrics adds up every worker's counters, killed workers' included.
    assert counted >= len(load.acked_ranks)


# --- PostgreSQL stop and start (make test-faults only) ------------------------------------

@pytest.fixture(scope="module")
def private_pg():
    """A PostgreSQL cluster of our own: stopping it disturbs no other test run."""
    if bin_dir() is None or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's initdb and runuser to make a private cluster")
    cluster = PrivateCluster.create()
    yield cluster
    cluster.destroy()


def _recovery_seconds(load: Load, baseline_rate: float, back: float, end: float) -> float:
    """Seconds from the database's return until a 1 s window reaches half the baseline."""
    t = back
    while t + 1.0 <= end:
        if load.acked_between(t, t + 1.0) >= 0.5 * baseline_rate:
            return t - back
        t += 0.1
    return float("inf")


@pytest.mark.skipif(not FULL, reason="slow (a private PostgreSQL cluster, stopped and "
                    "started under load): run it with `make test-faults`")
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_under_load(private_pg, mode, report):
    with postgres_database(private_pg.admin_url) as url:
        server, key = serve_experiment(url, f"faults-pg-{mode}", f"faults-{mode}")
        try:
            load = Load(server.url, key, f"faults-pg-{mode}", prefix=f"pg{mode}").start()
            time.sleep(3.0)
            down = time.monotonic()
            try:
                private_pg.stop(mode)
                time.sleep(2.0)
            finally:
                private_pg.start()
                private_pg.wait_ready()
            back = time.monotonic()
            time.sleep(6.0)
            end = time.monotonic()
            load.stop()
        finally:
            server.stop()
        figures = check_database(url, load)
    outage = [a for a in load.attempts if down <= a.started < back]
    statuses = Counter(a.status for a in outage)
    baseline = load.acked_between(down - 2.0, down) / 2.0
    recovery = _recovery_seconds(load, baseline, back, end)
    slowest = max((a.ended - a.started for a in outage), default=0.0)
    report.append(figures.row(
        f"PostgreSQL stop -m {mode}, 2 s down, start", f"during the outage: {dict(statuses)}, "
        f"slowest answer {slowest:.2f} s; recovered {recovery:.2f} s after the database "
        f"returned (baseline {baseline:.0f} ranks/s)"))
    assert_exactly_once(figures, load)
    assert statuses[503] > 0, f"no 503 while the database was down: {statuses}"
    assert all(a.retry_after for a in outage if a.status == 503)
    assert statuses[500] == 0 and statuses[None] == 0
    assert slowest < 5.0, "a request hung while the database was down"
    assert recovery <= 5.0


# --- the learner, killed mid-snapshot ------------------------------------------------------

LEARNER_FLAGS = ["--snapshot-examples", "20", "--snapshot-seconds", "0.2", "--grace-seconds",
                 "0.2", "--lease-seconds", "1"]


def _learner(database_url: str, key: str, log, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "tailor"), "learn", "--experiment", key, *LEARNER_FLAGS,
         *extra], cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL, stderr=log)


def _snapshots(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM models")).scalar_one()
    engine.dispose()
    return count


def _kill_after_next_snapshot(database_url: str, process: subprocess.Popen) -> bool:
    """SIGKILL the learner at a random instant shortly after it published a snapshot, so
    that the kill lands while it learns and snapshots again; False if it never did."""
    before = _snapshots(database_url)
    deadline = time.monotonic() + 30
    while _snapshots(database_url) == before and time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.4))
    process.kill()
    process.wait()
    return True


def learning_figures(database_url: str, key: str) -> dict[str, int]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        experiment_id = conn.execute(sa.text("SELECT id FROM experiments WHERE key = :k"),
                                     {"k": key}).scalar_one()
        where = {"e": experiment_id}
        row = conn.execute(sa.text(
            "SELECT count(*) AS closed, "
            "count(*) FILTER (WHERE learned_version IS NULL) AS unlearned, "
            "count(*) FILTER (WHERE learned_version > 0) AS learned "
            "FROM decisions WHERE experiment_id = :e AND closes_at IS NOT NULL"), where).one()
        newest = conn.execute(sa.text(
            "SELECT examples_learned FROM models WHERE experiment_id = :e "
            "ORDER BY version DESC LIMIT 1"), where).scalar_one()
        versions = conn.execute(sa.text(
            "SELECT count(*) FROM models WHERE experiment_id = :e"), where).scalar_one()
    engine.dispose()
    return {"closed": row.closed, "unlearned": row.unlearned, "learned": row.learned,
            "examples_in_newest_snapshot": newest, "snapshots": versions}


def test_kill_learner_mid_snapshot(database_url, report, tmp_path):
    from app import create_app

    backend = database_url.split(":", 1)[0].split("+")[0]
    if "learn" not in create_app({"DATABASE_URL": database_url}).cli.commands:
        pytest.skip("`tailor learn` does not exist yet: nothing to kill mid-snapshot")
    if not FULL:
        pytest.skip("slow (the learner is started again after each kill): make test-faults")
    key, kills_wanted = "faults-learn", (8 if FULL else 3)
    server, client_key = serve_experiment(database_url, key, "faults-learn", reward={
        "events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 1, "default": 0.0})
    kills = 0
    with open(tmp_path / "learner.log", "w+") as log:
        try:
            load = Load(server.url, client_key, key, prefix="learn").start()
            while kills < kills_wanted:
                if not _kill_after_next_snapshot(database_url, _learner(database_url, key, log)):
                    break
                kills += 1
            load.stop()
        finally:
            server.stop()
        time.sleep(2.5)  # every window closed, the dead learner's lease expired
        final = _learner(database_url, key, log, "--once")
        assert final.wait(120) == 0
        log.seek(0)
        learner_log = log.read()[-3000:]
    figures = check_database(database_url, load)
    learned = learning_figures(database_url, key)
    report.append(figures.row(f"kill -9 the learner {kills}x right after a snapshot "
                              f"({backend})", ", ".join(f"{k} {v}" for k, v in learned.items())))
    assert kills == kills_wanted, learner_log
    assert_exactly_once(figures, load)
    assert learned["unlearned"] == 0
    # Each decision learned once: the lineage's example count equals the decisions marked.
    assert learned["examples_in_newest_snapshot"] == learned["learned"] == learned["closed"]
