"""SQLite's side of the hot path's writes (experiments.direct): one writer at a time
across threads and processes, and the write-ahead log checkpointed off the hot path."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import weakref
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("tailor.sqlite")


class SqliteWriter:
    """One hot-path writer at a time on a SQLite file, across threads and processes.

    SQLite admits one writer and makes the others sleep and poll (1, 2, 5, 10 ... 100 ms
    between tries): with two gunicorn workers writing ranks, that polling put p99 at
    0.2-0.9 s while one worker alone stayed under 50 ms (docs/bench-rank.md). Here every
    thread takes `flock` on its own descriptor of a file beside the database: locks of
    separate descriptors exclude each other, within a process as across processes, and
    the kernel wakes the next writer as soon as the lock is free, without the GIL (a
    thread lock in front of it cost a futex wake-up under the GIL on every release).
    Writers outside the hot path (the learner, admin requests) still rely on SQLite's
    busy wait. A `:memory:` database (tests) has no file: a thread lock then.
    """

    def __init__(self, database: str | None) -> None:
        self._path = None if not database or database == ":memory:" \
            else os.path.abspath(database) + ".tailor-write.lock"
        self._thread_lock = threading.Lock() if self._path is None else None
        self._local = threading.local()

    @property
    def has_file(self) -> bool:
        return self._path is not None

    def __enter__(self) -> None:
        if self._thread_lock is not None:
            self._thread_lock.acquire()
        else:
            fcntl.flock(self._file(), fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        if self._thread_lock is not None:
            self._thread_lock.release()
        else:
            fcntl.flock(self._local.fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        # One descriptor per thread, opened in its process: a descriptor inherited
        # through fork shares its lock with the parent, which would let a forked worker
        # and its siblings write at once. Closed with the thread (`_Descriptor`).
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            assert self._path is not None
            held = self._local.held = _Descriptor(self._path)
            self._local.fd = held.fd
        return held.fd


class Checkpointer:
    """Checkpoints a SQLite file's write-ahead log from a background thread of each
    process, so that no hot-path writer copies it back while holding `SqliteWriter`'s lock.

    A rank's commit appends ~13 pages to the WAL (the row, its eight indexes, its key
    and the key's index: ~50 KB). By default the commit that takes the WAL past 1,000
    pages copies them all back into the database and syncs it, every ~80th rank, while
    its writer held the hot-path lock: every other writer queued behind it (the lock's
    hold time had a p99 of ~5 ms and a max of 50 ms, docs/bench-rank.md). So the hot
    path's connections do not checkpoint (`wal_autocheckpoint=0`); every `interval`
    seconds this thread runs a PASSIVE checkpoint, which copies what it can without
    blocking anyone. That alone never lets the WAL start over while ranks keep coming
    (a writer restarts it only if every frame was copied when it began), so once the
    WAL holds more than `restart_pages`, the thread takes the writers' lock and copies
    the few frames written during the first pass, a short hold after which the next
    writer restarts the WAL. Durability is untouched: a commit is durable once its WAL
    frames are synced (`synchronous` as configured); a checkpoint only moves them.
    """

    def __init__(self, engine: sa.Engine, writer: SqliteWriter, interval: float = 0.1,
                 restart_pages: int = 1000) -> None:
        self._engine = weakref.ref(engine)  # the thread ends with it
        self._writer = writer
        self._interval = interval
        self.restart_pages = restart_pages
        self._stop = threading.Event()
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        """Start this process's thread if it is not running (after a fork it is not)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._stop = threading.Event()
                threading.Thread(target=self._loop, args=(self._stop,), daemon=True,
                                 name="tailor-wal-checkpoint").start()
                self._pid = os.getpid()

    def stop(self) -> None:
        self._stop.set()
        self._pid = 0

    def step(self, connection: Any) -> None:
        """One pass: copy what can be copied; past `restart_pages`, the rest under the
        writers' lock, so that the next writer starts the WAL over."""
        if _checkpoint(connection) > self.restart_pages:
            with self._writer:
                _checkpoint(connection)

    def _loop(self, stop: threading.Event) -> None:
        # An error must not end the thread: the hot path's connections never checkpoint,
        # so without it the WAL would grow until the process ends. Log, reconnect, go on.
        connection, failing = None, False
        while not stop.wait(self._interval):
            engine = self._engine()
            if engine is None:
                break
            try:
                if connection is None:
                    connection = engine.raw_connection()
                    connection.detach()
                self.step(connection)
                failing = False
            except Exception as exc:  # noqa: BLE001 - e.g. disk full: retry next tick
                if not failing:
                    log.warning("WAL checkpoint failed, retrying: %s", exc)
                failing = True
                _close(connection)
                connection = None
            finally:
                del engine
        _close(connection)


def _close(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def _checkpoint(connection: Any) -> int:
    """A PASSIVE checkpoint; the frames in the WAL (since it last started over)."""
    cursor = connection.dbapi_connection.cursor()
    try:
        _busy, frames, _copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        cursor.close()


class _Descriptor:
    """A lock file's descriptor, closed when its thread's local storage goes."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid == os.getpid():
            os.close(self.fd)
