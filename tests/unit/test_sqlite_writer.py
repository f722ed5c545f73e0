"""experiments.sqlite_writes.SqliteWriter: one hot-path writer per SQLite file, across processes."""

from __future__ import annotations

import os
import time

import pytest

from experiments.sqlite_writes import SqliteWriter


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


def _wal_frames(path: str) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def test_hot_writes_leave_the_checkpoint_to_a_thread_that_lets_the_wal_start_over(tmp_path):
    import sqlalchemy as sa

    from app.db import make_engine
    from experiments.direct import Direct

    path = str(tmp_path / "tailor.db")
    engine = make_engine(f"sqlite:///{path}", autocommit=True)
    direct = Direct(engine)
    checkpointer = direct._checkpointer
    assert checkpointer is not None
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE rows (id INTEGER PRIMARY KEY, data BLOB)")
    insert = sa.text("INSERT INTO rows (data) VALUES (randomblob(3000)) RETURNING id")
    checkpointer.stop()  # this test runs its passes itself
    try:
        for _ in range(600):
            direct.first(insert, {})
        # The hot connection never checkpoints: every frame is still in the WAL.
        assert direct.connection().cursor.execute(
            "PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        helper = engine.raw_connection()
        helper.detach()
        checkpointer.restart_pages = 100
        checkpointer.step(helper)  # all copied, under the writers' lock for the rest
        direct.first(insert, {})  # ...so this writer starts the WAL over
        assert _wal_frames(path) < 20
        helper.close()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM rows").scalar_one() == 601
    finally:
        direct.dispose()


def test_the_checkpoint_thread_runs_in_each_process_that_writes(tmp_path):
    import threading

    import sqlalchemy as sa

    from app.db import make_engine
    from experiments.direct import Direct

    engine = make_engine(f"sqlite:///{tmp_path / 'tailor.db'}", autocommit=True)
    direct = Direct(engine)
    try:
        direct.first(sa.text("SELECT 1"), {})
        names = [thread.name for thread in threading.enumerate()]
        assert "tailor-wal-checkpoint" in names
    finally:
        direct.dispose()


def test_the_checkpoint_thread_survives_a_failed_pass(tmp_path):
    # The hot path's connections never checkpoint: a thread that died on one error would
    # let the WAL grow for the life of the process.
    import sqlalchemy as sa

    from app.db import make_engine
    from experiments.sqlite_writes import Checkpointer

    engine = make_engine(f"sqlite:///{tmp_path / 'tailor.db'}", autocommit=True)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    checkpointer = Checkpointer(engine, SqliteWriter(str(tmp_path / "tailor.db")),
                                interval=0.01)
    passes: list[bool] = []
    real_step = checkpointer.step

    def step(connection):
        passes.append(True)
        if len(passes) == 1:
            raise OSError("disk I/O error")
        real_step(connection)

    checkpointer.step = step  # type: ignore[method-assign]
    checkpointer.ensure_running()
    try:
        deadline = time.monotonic() + 5
        while len(passes) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(passes) >= 3
    finally:
        checkpointer.stop()
        engine.dispose()
