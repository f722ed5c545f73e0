"""`tailor serve`: gunicorn (the API) and the learner side by side, in the configuration
`make run` uses, from any directory; Ctrl-C (SIGINT) or SIGTERM stops both."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app

from app import cli_learn, db, snapshot_signal
from app.cli_base import UserError, with_database

# The directory holding the `app` package (a checkout, or site-packages). gunicorn and the
# learner run there, so that a directory of the caller's with its own `app/` (a Flask
# project, say) cannot stand in for Tailor's.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = 20.0  # gunicorn's graceful timeout is 10 s; then the children are killed


@dataclass(frozen=True)
class Layout:
    host: str
    port: int
    workers: int
    threads: int
    reuse_port: bool
    learner: bool
    learner_nice: int
    access_log: bool

    @property
    def address(self) -> str:
        """host:port as gunicorn's --bind and URLs write it (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def gunicorn_command(layout: Layout) -> list[str]:
    """gunicorn as `make run` runs it.

    Workers are gthread processes forked from a master that imported the app once
    (`--preload`: a dead worker is replaced in milliseconds), and the hooks freeze that
    imported heap out of the garbage collector's reach (app/gunicorn_hooks.py). With
    `reuse_port` each worker listens on its own socket (SO_REUSEPORT), so the kernel
    spreads new connections over the workers: with one shared socket the worker that woke
    first accepted most of a client's kept-alive connections and served them alone, on one
    core (docs/bench-rank.md, third pass). The access log is off unless asked for: its
    lines carry URLs, erasure URLs carry unit ids (docs/security.md). No control socket:
    gunicorn's default one is `~/.gunicorn/gunicorn.ctl`, one path for every server of a
    user, and Tailor has no use for `gunicornc`.
    """
    command = [sys.executable, "-m", "gunicorn", "--config", "python:app.gunicorn_hooks",
               "--chdir", str(PACKAGE_ROOT), "--bind", layout.address,
               "--workers", str(layout.workers), "--threads", str(layout.threads),
               "--worker-class", "gthread", "--preload", "--graceful-timeout", "10",
               "--no-control-socket"]
    if layout.reuse_port:
        command.append("--reuse-port")
    if layout.access_log:
        command += ["--access-logfile", "-"]
    return [*command, "app:create_app()"]


def learner_command() -> list[str]:
    return [sys.executable, "-m", "app", "learn"]


def listen_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on host:port (None: it can). Something listening
    there already is refused too: sockets with SO_REUSEPORT share their port with any
    other such socket of this user, so a second server would silently split the first
    one's traffic."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot listen on {host}:{port}: not an address of this machine ({exc})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} is in use: stop the server on it, or choose another "
                        "with --port")
            return f"cannot listen on {host}:{port}: {exc.strerror or exc} (--host, --port)"
    return None


def absolute_database_url(url: str) -> str:
    """`url` with a relative SQLite path made absolute (the children run elsewhere)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
    return parsed.render_as_string(hide_password=False)


class MetricsDir:
    """/metrics adds up the counters of every gunicorn worker from files in this directory
    (docs/operations.md); a fresh start begins from zero. A private temporary directory
    unless PROMETHEUS_MULTIPROC_DIR names one (emptied of old counters, kept)."""

    PREFIX, STALE = "tailor-metrics.", "*.db"

    def __init__(self, configured: str | None) -> None:
        self.own = not configured
        self.path = Path(configured or tempfile.mkdtemp(prefix=self.PREFIX)).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        for old in self.path.glob(self.STALE):
            old.unlink()

    def remove(self) -> None:
        if self.own:
            shutil.rmtree(self.path, ignore_errors=True)


class SignalDir(MetricsDir):
    """Where the learner wakes the workers' model watchers after each snapshot
    (app/snapshot_signal.py). Private unless TAILOR_SIGNAL_DIR names one."""

    PREFIX, STALE = "tailor-signal.", "*.sock"


def _child_setup(nice: int = 0):
    """In each child before it runs: Ctrl-C is this process's to handle (it stops the
    children with SIGTERM), so the children ignore SIGINT until they install their own
    handlers; a child still importing when Ctrl-C comes then stops on SIGTERM quietly
    instead of printing a KeyboardInterrupt traceback."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if nice:
            os.nice(nice)

    return setup


def start(layout: Layout, env: dict[str, str], children: list[subprocess.Popen]) -> None:
    """Start gunicorn and the learner, appending each to `children` as it starts."""
    children.append(subprocess.Popen(gunicorn_command(layout), cwd=PACKAGE_ROOT, env=env,
                                     preexec_fn=_child_setup()))
    if layout.learner:
        # The learner works in batches and can wait; rank cannot.
        children.append(subprocess.Popen(learner_command(), cwd=PACKAGE_ROOT, env=env,
                                         preexec_fn=_child_setup(layout.learner_nice)))


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM."""
    asked = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        asked.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return asked


def supervise(children: list[subprocess.Popen], asked: threading.Event) -> int:
    """Wait for a signal or for a child to exit; then stop every child. The exit status:
    0 after a signal, else the status of the child that exited (or 1)."""
    while not asked.is_set() and all(child.poll() is None for child in children):
        asked.wait(0.2)
    exited = [child.returncode for child in children if child.poll() is not None]
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if asked.is_set() else (exited[0] or 1)


@click.command("serve", help="Serve the API with gunicorn (4 worker processes x 2 threads, "
               "each worker on its own socket) and run the learner beside it, as `make run` "
               "does. Run `tailor init` first. Ctrl-C stops both.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, envvar="PORT",
              show_default=True, show_envvar=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; see docs/operations.md "
              "on /metrics).")
@click.option("--workers", type=click.IntRange(1), default=4, envvar="WORKERS",
              show_default=True, show_envvar=True, help="gunicorn worker processes.")
@click.option("--threads", type=click.IntRange(1), default=2, envvar="THREADS",
              show_default=True, show_envvar=True, help="Threads per worker.")
@click.option("--reuse-port/--shared-socket", default=True, envvar="REUSE_PORT",
              show_default=True, show_envvar=True,
              help="Each worker on its own socket (SO_REUSEPORT), or one shared socket.")
@click.option("--learner/--no-learner", default=True, envvar="LEARNER", show_default=True,
              show_envvar=True, help="Run `tailor learn` beside gunicorn.")
@click.option("--learner-nice", type=click.IntRange(0, 19), default=10, envvar="LEARNER_NICE",
              show_default=True, show_envvar=True, help="`nice` level of the learner.")
@click.option("--access-log/--no-access-log", default=False, envvar="TAILOR_ACCESS_LOG",
              show_default=True, show_envvar=True,
              help="gunicorn's access log on stdout (its lines carry unit ids).")
@with_database()
def serve(**options: Any) -> None:
    layout = Layout(**options)
    if layout.learner:
        cli_learn.check_environment()
    if (problem := listen_problem(layout.host, layout.port)) is not None:
        raise UserError(problem)
    url = absolute_database_url(current_app.config["DATABASE_URL"])
    db.dispose(current_app)
    metrics = MetricsDir(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    signals = SignalDir(os.environ.get(snapshot_signal.ENV))
    env = {**os.environ, "DATABASE_URL": url, "PROMETHEUS_MULTIPROC_DIR": str(metrics.path),
           snapshot_signal.ENV: str(signals.path)}
    asked, children = stop_on_signals(), []
    try:
        start(layout, env, children)
        click.echo(f"Tailor serving on {layout.url} ({layout.workers} worker(s) x "
                   f"{layout.threads} threads, learner {'on' if layout.learner else 'off'}; "
                   "Ctrl-C stops both)", err=True)
    except BaseException:
        asked.set()  # stop what did start
        raise
    finally:
        status = supervise(children, asked)
        metrics.remove()
        signals.remove()
    sys.exit(status)
