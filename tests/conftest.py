"""Fixtures shared by every test that touches a database: each runs on SQLite and on
PostgreSQL (`TEST_DATABASE_URL`, default the local server's `test` database).

PostgreSQL: one private database per pytest process (created from the `test` database's
server, dropped at the end), so concurrent runs never see each other's rows. Each test
starts from it emptied (`_truncate`); SQLite: from a copy of a migrated file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.db import dispose as db_dispose
from app.db import make_engine
from app.migrate import upgrade
from experiments import keys
from experiments.models import Base

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgresql"]


def pg_admin_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL database, migrated to head, for this test session."""
    admin_url = sa.engine.make_url(make_engine(pg_admin_url()).url)
    name = f"tailor_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {pg_admin_url()}: {exc.orig}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    if url in _ENGINES:
        _ENGINES.pop(url).dispose()
    admin.dispose()
    drop_in_background(admin_url.render_as_string(hide_password=False), name)


# A DROP DATABASE makes PostgreSQL write a checkpoint of the whole server, every dirty
# buffer of every database (2 s when the machine is quiet, 30-70 s measured while other
# engineers load the shared server): a detached process drops the database, and the test
# run ends without waiting for it.
_DROP = """import os, sys
if os.fork():  # the parent answers at once; the child, orphaned, drops
    os._exit(0)
import sqlalchemy as sa
admin = sa.create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
"""


def drop_in_background(admin_url: str, name: str) -> None:
    subprocess.run([sys.executable, "-c", _DROP, admin_url, name], start_new_session=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=60)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tailor.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


# Every sequence back to its start, as a fresh migration leaves them (the ids of a test
# never depend on the tests before it).
_RESTART_SEQUENCES = ("SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s "
                      "JOIN pg_class c ON c.oid = s.seqrelid "
                      "WHERE c.relnamespace = current_schema()::regnamespace")


_ENGINES: dict[str, sa.Engine] = {}


def _engine(url: str) -> sa.Engine:
    """One pooled engine per database for the resets (pre-ping: some tests terminate the
    database's connections)."""
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(url)
    return _ENGINES[url]


def _truncate(url: str) -> None:
    """Empty every table and restart every id sequence: the database a test starts from.

    DELETE rather than TRUNCATE: TRUNCATE gives each table, partition and index a new file
    (the partitioned tables have a dozen partitions), ~0.5 s per test when the machine is
    quiet and over 1 s when it is not; deleting the few rows a test wrote takes ~40 ms.
    Children first, so that no foreign key is in the way."""
    statements = [f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables)]
    with _engine(url).begin() as conn:
        conn.exec_driver_sql("; ".join(statements))
        conn.exec_driver_sql(_RESTART_SEQUENCES)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "tailor.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _truncate(url)
    return url


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same backend with nothing in it (not even a schema)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = sa.engine.make_url(make_engine(pg_admin_url()).url)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tailor_migrate_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    drop_in_background(admin_url.render_as_string(hide_password=False), name)


@pytest.fixture
def app(database_url: str):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "MODEL_CHECK_SECONDS": 0.0})
    yield app

    db_dispose(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class TeamKeys:
    team_id: int
    admin: str
    client: str
    analyst: str

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, scope)}"}


def make_team(app, name: str) -> TeamKeys:
    from app.db import EXTENSION

    with app.extensions[EXTENSION]() as session:
        team = keys.get_or_create_team(session, name)
        made = {scope: keys.create_key(session, team, scope)[0] for scope in keys.SCOPES}
        session.commit()
        return TeamKeys(team.id, made["admin"], made["client"], made["analyst"])


@pytest.fixture
def team(app) -> TeamKeys:
    return make_team(app, "team-a")


@pytest.fixture
def other_team(app) -> TeamKeys:
    return make_team(app, "team-b")


def session_of(app):
    from app.db import EXTENSION

    return app.extensions[EXTENSION]()


# The fault tests' table (tests/faults/test_faults.py): each test keeps its rows in its
# report's user properties, and the table is printed once at the end of the run from the
# reports, so that it shows also when pytest-xdist ran the tests in workers (whose output
# is not shown). Here, not in tests/faults/: xdist's controller loads only this conftest.
FAULT_ROW = "fault table row"
_fault_rows: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _fault_rows.extend(value for name, value in report.user_properties
                           if name == FAULT_ROW)


def pytest_terminal_summary(terminalreporter) -> None:
    if _fault_rows:
        from tests.faults.driver import HEADER

        full = os.environ.get("TAILOR_FAULTS_FULL") == "1"
        terminalreporter.write_line("\nfault tests" + (" (full)" if full else " (short)"))
        for line in [HEADER, *_fault_rows]:
            terminalreporter.write_line(line)
