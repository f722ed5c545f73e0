"""app/serve.sh as `make run` starts it: every worker listens on its own socket
(SO_REUSEPORT), so the kernel spreads connections over them, and it refuses a port that
another server holds instead of sharing it."""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.server import Server

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
            with pytest.raises(RuntimeError, match="port .* is in use"):
                server.start(timeout=20)
            assert listening_sockets(server.port) == 1  # only the other server's
        finally:
            server.stop()
