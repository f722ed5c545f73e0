"""Databases and servers for the benchmarks: `tailor serve` (the `make run` configuration:
gunicorn gthread, same flags) on a private SQLite file or a private PostgreSQL database,
and the plain-Flask no-op (bench/plain_flask.py) under the same gunicorn command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from app.cli_serve import Layout, gunicorn_command
from app.db import make_engine
from app.migrate import upgrade
from experiments import keys

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_ADMIN = "postgresql://root@127.0.0.1:5432/test"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as tmp:
        url = f"sqlite:///{tmp}/tailor.db"
        _migrate(url)
        yield url


@contextmanager
def postgres_database(admin_url: str | None = None) -> Iterator[str]:
    """A private, migrated PostgreSQL database, dropped afterwards."""
    admin_url = admin_url or os.environ.get("TAILOR_BENCH_PG_URL", DEFAULT_PG_ADMIN)
    base = sa.engine.make_url(make_engine(admin_url).url)
    name = f"tailor_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    # No pool: the server may have been restarted since (fault tests).
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str) -> Iterator[str]:
    maker = {"sqlite": sqlite_database, "postgresql": postgres_database}[backend]
    with maker() as url:
        yield url


@dataclass(frozen=True)
class Tenant:
    admin: str
    client: str
    analyst: str


def create_tenant(url: str, name: str = "bench") -> Tenant:
    """A team with one key of each scope (plain keys)."""
    engine = make_engine(url)
    with sa.orm.Session(engine) as session:
        team = keys.get_or_create_team(session, name)
        made = {scope: keys.create_key(session, team, scope)[0] for scope in keys.SCOPES}
        session.commit()
    engine.dispose()
    return Tenant(made["admin"], made["client"], made["analyst"])


def count_rows(url: str, table: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return count


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
            for tid in tasks:
                with open(f"/proc/{current}/task/{tid}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the live processes among `pids`."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine (its backends and background workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == "postgres":
                        found.append(int(entry))
            except OSError:
                continue
    return found


@dataclass
class Served:
    """`tailor serve` running on a free port (stop() or use as a context manager).

    The layout defaults to 2 workers x 4 threads, lighter for tests; `make run` (and the
    benchmarks, which pass it) use 4 x 2."""

    database_url: str
    workers: int = 2
    threads: int = 4
    learner: bool = False
    extra_env: dict[str, str] | None = None
    port: int = 0
    process: subprocess.Popen | None = None
    stderr: Any = None  # a file for `tailor serve`'s, gunicorn's and the app's stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "tailor"), "serve",
                "--port", str(self.port), "--workers", str(self.workers),
                "--threads", str(self.threads),
                "--learner" if self.learner else "--no-learner"]

    def start(self, timeout: float = 60.0) -> Served:
        self.port = self.port or free_port()
        env = {**os.environ, "DATABASE_URL": self.database_url, **(self.extra_env or {})}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `tailor serve` makes a private one
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=self.stderr or subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command()[-1]} exited early "
                                   f"({self.process.returncode})")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.command()[-1]} did not become healthy")

    def pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process else []

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> Served:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


PLAIN_APP = "bench.plain_flask:create_app()"


@dataclass
class PlainServed(Served):
    """The plain-Flask no-op (bench/plain_flask.py) under the gunicorn command line that
    `tailor serve` runs (app/cli_serve.py's `gunicorn_command`: same worker class, layout,
    `--preload`, hooks, SO_REUSEPORT), with only the application swapped. `database_url`
    is not used by the app (the benchmarks count decisions in it: none are added)."""

    def command(self) -> list[str]:
        layout = Layout(host="127.0.0.1", port=self.port, workers=self.workers,
                        threads=self.threads, reuse_port=True, learner=False,
                        learner_nice=0, access_log=False)
        command = gunicorn_command(layout)
        if command[-1] != "app:create_app()":
            raise RuntimeError(f"unexpected gunicorn command of tailor serve: {command}")
        return [*command[:-1], PLAIN_APP]
