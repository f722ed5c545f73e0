"""The same-host wake-up between the learner and the workers' model watchers."""

from __future__ import annotations

import os
import socket
import threading
import time

from app import snapshot_signal


def test_notify_wakes_every_listener_and_coalesces_signals(tmp_path):
    first, second = (snapshot_signal.listener(str(tmp_path)) for _ in range(2))
    assert first is not None and second is not None
    try:
        assert not first.wait(0.01)  # nothing sent: times out
        assert snapshot_signal.notify(str(tmp_path)) == 2
        assert snapshot_signal.notify(str(tmp_path)) == 2
        assert first.wait(5) and second.wait(5)
        assert not first.wait(0.01)  # both signals were consumed by one wait
    finally:
        first.close()
        second.close()
    assert list(tmp_path.iterdir()) == []


def test_a_blocked_listener_returns_as_soon_as_signalled(tmp_path):
    listener = snapshot_signal.listener(str(tmp_path))
    assert listener is not None
    woken: list[float] = []
    thread = threading.Thread(target=lambda: woken.append(listener.wait(60)))
    thread.start()
    time.sleep(0.05)
    snapshot_signal.notify(str(tmp_path))
    thread.join(10)
    listener.close()
    assert woken == [True]


def test_sockets_of_dead_processes_are_removed(tmp_path):
    stale = tmp_path / f"{os.getpid()}-dead{snapshot_signal.SUFFIX}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(stale))
    assert stale.exists()  # bound, then closed: nobody reads it
    assert snapshot_signal.notify(str(tmp_path)) == 0
    assert not stale.exists()


def test_no_directory_means_no_listener_and_no_signal():
    assert snapshot_signal.listener(None) is None
    assert snapshot_signal.listener("/nonexistent/dir") is None
    assert snapshot_signal.notify(None) == 0
