"""`tailor serve` as `make run` starts it: every worker listens on its own socket
(SO_REUSEPORT), so the kernel spreads connections over them; it refuses a port that
another server holds instead of sharing it; its start-up says the address; the learner
runs beside it under `nice`, and Ctrl-C (SIGINT to the terminal's process group) stops
everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from bench._servers import descendants, free_port, sqlite_database
from tests.e2e.server import BIN, Server

pytestmark = pytest.mark.e2e

LISTEN = "0A"  # TCP state in /proc/net/tcp


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN on 127.0.0.1:`port`."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == f"0100007F:{port:04X}" and row[3] == LISTEN)


def sockets_after_start(port: int, expected: int, timeout: float = 15.0) -> int:
    """The count of listening sockets once it reaches `expected` (workers open theirs as
    they boot, after the first one already answers), or when `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while (found := listening_sockets(port)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_each_worker_listens_on_its_own_socket(database_url):
    server = Server(database_url, workers=3, threads=1).start()
    try:
        assert sockets_after_start(server.port, 3) == 3
    finally:
        server.stop()
    assert listening_sockets(server.port) == 0


def test_a_port_held_by_another_server_is_refused_not_shared(database_url):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        server = Server(database_url, port=other.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="port .* is in use: stop the server"):
                server.start(timeout=20)
            assert listening_sockets(server.port) == 1  # only the other server's
        finally:
            server.stop()


def niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[16])


def command_line(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline") as handle:
        return handle.read().replace("\0", " ")


def alive(pids: list[int]) -> list[int]:
    """The processes among `pids` that still run (not gone, not zombies)."""
    running = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                if "zombie" not in handle.read():
                    running.append(pid)
        except FileNotFoundError:
            continue
    return running


@pytest.fixture
def sqlite_url():
    """Process handling does not depend on the backend: SQLite only, to save time."""
    with sqlite_database() as url:
        yield url


def test_start_up_names_the_address_and_ctrl_c_stops_gunicorn_and_the_learner(sqlite_url):
    server = Server(sqlite_url, workers=2, threads=1, learner=True).start()
    try:
        assert f"Listening at: http://127.0.0.1:{server.port} (each worker" in server.log()
        assert "Listening at:  (" not in server.log()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not [
                p for p in server.pids() if " learn" in command_line(p)]:
            time.sleep(0.1)
        learners = [p for p in server.pids() if " learn" in command_line(p)]
        assert len(learners) == 1 and niceness(learners[0]) == 10
        deadline = time.monotonic() + 15  # the second worker may still be booting
        while len(server.pids()) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        everything = server.pids()
        assert len(everything) >= 5  # tailor serve, gunicorn master, 2 workers, learner
        os.killpg(server.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        server.process.wait(30)
        deadline = time.monotonic() + 10
        while alive(everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(everything) == []
        assert server.process.returncode == 0
        assert listening_sockets(server.port) == 0
    finally:
        server.stop()


def test_ctrl_c_while_still_starting_stops_quietly(sqlite_url, tmp_path):
    """Ctrl-C before gunicorn and the learner finished importing: they ignore SIGINT until
    their own handlers are in place and stop on `tailor serve`'s SIGTERM, no traceback."""
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(BIN / "tailor"), "serve", "--port", str(free_port()), "--workers", "1"],
            env={**os.environ, "DATABASE_URL": sqlite_url}, stdout=out, stderr=out,
            start_new_session=True)
        time.sleep(0.5)  # `tailor serve` imports for a while before it starts anything
        deadline = time.monotonic() + 30
        while len(descendants(server.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        everything = descendants(server.pid)
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(60) == 0
    deadline = time.monotonic() + 10
    while alive(everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(everything) == []
    assert "Traceback" not in log.read_text(), log.read_text()
