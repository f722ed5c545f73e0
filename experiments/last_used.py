"""When each API key was last used, written off the request path.

Authentication never writes: it records a use in this process's memory
(`LastUsed.record`, a dict write under a lock). One background thread per process writes
the recorded times every `interval` seconds (the config key `KEY_LAST_USED_SECONDS`, 60
by default), one UPDATE per key used since the last write, in its own transaction on a
connection it closes afterwards. So a key's `last_used_at` is the time of a use at most
`interval` seconds (plus a tick of the thread) older than its latest one: its resolution
is `interval` seconds. The UPDATE only moves `last_used_at` forward, so workers writing
in any order agree. A worker that exits normally writes its uses first (`flush_all`,
from app/gunicorn_hooks.py); one killed (-9) loses at most the last `interval` seconds
of uses, never a key's earlier last use. A failed write (database down) keeps the uses
for the next attempt.

Revocation does not depend on any of this: authentication reads the key (or checks it in
the write's guard) on every request, as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref

import sqlalchemy as sa

from experiments.models import ApiKey

log = logging.getLogger(__name__)
TICK_SECONDS = 0.25  # how often the thread looks for a recorder whose interval is over

_UPDATE = (sa.update(ApiKey)
           .where(ApiKey.key_id == sa.bindparam("used_key"),
                  sa.or_(ApiKey.last_used_at.is_(None),
                         ApiKey.last_used_at < sa.bindparam("used_at")))
           .values(last_used_at=sa.bindparam("used_at")))


class LastUsed:
    """Uses of keys recorded in memory, written by the process's flusher thread.

    Args:
        engine: the database the keys live in (a transactional engine).
        interval: seconds between two writes of this recorder's uses.
    """

    def __init__(self, engine: sa.Engine, interval: float = 60.0) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._flushed_at = time.monotonic()
        _RECORDERS.add(self)

    def record(self, key_id: str, when: float) -> None:
        """Remember that `key_id` was used at `when` (epoch seconds); no database access."""
        with self._lock:
            if when > self._pending.get(key_id, -1.0):
                self._pending[key_id] = when
        _ensure_flusher()

    def pending(self) -> dict[str, float]:
        """The uses not written yet (a copy)."""
        with self._lock:
            return dict(self._pending)

    def due(self, now: float) -> bool:
        return now - self._flushed_at >= self.interval

    def flush(self) -> int:
        """Write the recorded uses now, in one transaction; the number of keys written
        (0 when nothing was pending or the write failed: the uses are then kept)."""
        self._flushed_at = time.monotonic()
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            self._write(pending)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not write the last use of %d API key(s), retrying in %g s: %s",
                        len(pending), self.interval, exc.__class__.__name__)
            with self._lock:
                for key_id, when in pending.items():
                    if when > self._pending.get(key_id, -1.0):
                        self._pending[key_id] = when
            return 0
        return len(pending)

    def _write(self, pending: dict[str, float]) -> None:
        # A connection of its own, closed afterwards (invalidated, not pooled): one every
        # `interval` costs nothing, and none stays open behind the app's back (after the
        # app's engine was disposed, say).
        with self.engine.connect() as conn:
            try:
                with conn.begin():
                    conn.execute(_UPDATE, [{"used_key": k, "used_at": t}
                                           for k, t in pending.items()])
            finally:
                conn.invalidate()


_RECORDERS: weakref.WeakSet[LastUsed] = weakref.WeakSet()
_flusher_pid: int | None = None  # the process whose flusher thread is running
_start_lock = threading.Lock()


def _ensure_flusher() -> None:
    """Start this process's flusher thread unless it runs (threads do not survive a fork:
    gunicorn's workers each start their own on their first authenticated request)."""
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    with _start_lock:
        if _flusher_pid == os.getpid():
            return
        threading.Thread(target=_flush_loop, name="tailor-last-used", daemon=True).start()
        _flusher_pid = os.getpid()


def _flush_loop() -> None:
    while True:
        time.sleep(TICK_SECONDS)
        now = time.monotonic()
        for recorder in list(_RECORDERS):
            if recorder.due(now):
                try:
                    recorder.flush()
                except Exception:  # the thread must outlive any one failure
                    log.exception("writing the last use of API keys failed")


def flush_all() -> int:
    """Write every recorder's pending uses now (a worker's exit); keys written."""
    return sum(recorder.flush() for recorder in list(_RECORDERS))
