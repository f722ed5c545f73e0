"""experiments.direct.SqliteWriter: one hot-path writer per SQLite file, across processes."""

from __future__ import annotations

import os
import time

import pytest

from experiments.direct import SqliteWriter


def test_a_writer_in_another_process_makes_this_one_wait(tmp_path):
    writer = SqliteWriter(str(tmp_path / "tailor.db"))
    with writer:
        pass  # the descriptor is open in this process before the fork: the child must not share it
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        try:
            with writer:
                os.write(ready_w, b"x")
                time.sleep(0.6)
        finally:
            os._exit(0)
    os.read(ready_r, 1)  # the child holds the lock now
    started = time.monotonic()
    with writer:
        waited = time.monotonic() - started
    os.waitpid(child, 0)
    assert waited >= 0.4


@pytest.mark.parametrize("database", ["tailor.db", ":memory:"])
def test_threads_of_one_process_take_turns(tmp_path, database):
    import threading

    path = database if database == ":memory:" else str(tmp_path / database)
    writer = SqliteWriter(path)
    inside: list[int] = []
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(200):
            with writer:
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    # A memory database needs no lock file; a file database has its one lock file.
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        [] if database == ":memory:" else ["tailor.db.tailor-write.lock"])
