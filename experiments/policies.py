"""Per-process policies for each experiment, kept fresh with newer model snapshots.

VW workspaces are built here, lazily, inside the worker process (after gunicorn forks),
never per request: a request reuses the cached policy. Newer snapshots reach it one of two
ways:

- watched (`watch`, started in each gunicorn worker by app/gunicorn_hooks.py): a
  background thread of the process asks the database every `check_seconds` whether the
  learner published a newer snapshot of a cached bandit (and at once when the learner
  signals one: app/snapshot_signal.py), loads it and swaps it in. A request never waits
  for that query nor for the load (2-4 ms of VW work, holding the GIL up to 3-6 ms at a
  time: docs/bench-rank.md, "Issue 15, the learner's part");
- unwatched (the Flask test client, `flask run`, the CLI): the request itself checks, at
  most once per `check_seconds`, and loads what is new.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits.policy import BaselinePolicy, FixedPolicy, Policy, UniformPolicy, VWPolicy
from experiments.errors import Unprocessable
from experiments.models import Experiment, Model

FROZEN_CACHE_SIZE = 16
SLOW_LOAD_SECONDS = 0.02

log = logging.getLogger("tailor.policies")


class Wakeup(Protocol):
    """Wakes the watcher early when a snapshot was published (app/snapshot_signal.py)."""

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``; True when woken."""
        ...

    def interrupt(self) -> None:
        """Wake a thread blocked in ``wait`` now."""
        ...

    def close(self) -> None:
        ...


@dataclass
class _Entry:
    policy: VWPolicy
    checked_at: float
    newest_seen: int = 0  # the newest version of any arguments when last checked


class PolicyCache:
    """The policies one process serves from (thread-safe)."""

    def __init__(self, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._bandits: dict[int, _Entry] = {}
        self._frozen: OrderedDict[tuple[int, int], VWPolicy] = OrderedDict()
        self._lock = threading.Lock()
        self._watcher: _Watcher | None = None
        # The last loads: (experiment, version, seconds, thread name), for logs and tests.
        self.reloads: deque[tuple[int, int, float, str]] = deque(maxlen=100)

    def bandit(self, session: Session, experiment: Experiment) -> VWPolicy:
        """The newest snapshot of the experiment's learner (a fresh model before the first)."""
        # Derived once per configuration version (validating the learner settings again
        # on every rank cost more than the rest of this lookup): rank's cached snapshot
        # carries its parsed configuration (experiment_cache.ExperimentSnapshot.settings).
        arguments = experiment.settings.learner.vw_arguments
        now = time.monotonic()
        entry = self._bandits.get(experiment.id)
        fresh = entry is not None and entry.policy.arguments == arguments
        if fresh and (self.watched or now - entry.checked_at  # type: ignore[union-attr]
                      < self.check_seconds):
            return entry.policy  # type: ignore[union-attr]
        latest = latest_version(session, experiment.id, arguments)
        if fresh and entry.policy.version == latest:  # type: ignore[union-attr]
            entry.checked_at = now  # type: ignore[union-attr]
            return entry.policy  # type: ignore[union-attr]
        policy = self._load(session, experiment.id, arguments, latest)
        with self._lock:
            self._bandits[experiment.id] = _Entry(policy, now)
        return policy

    def _load(self, session: Session, experiment_id: int, arguments: str,
              version: int) -> VWPolicy:
        started = time.perf_counter()
        if version == 0:
            return VWPolicy(arguments)
        data = model_bytes(session, experiment_id, version)
        policy = VWPolicy(arguments, data, version=version)
        seconds = time.perf_counter() - started
        self.reloads.append((experiment_id, version, seconds,
                             threading.current_thread().name))
        # A load holds the GIL (VW's C++), stalling the process's other threads: say when
        # one is long enough to show in a latency tail.
        log.log(logging.WARNING if seconds >= SLOW_LOAD_SECONDS else logging.DEBUG,
                "experiment %s: model version %s loaded in %.1f ms", experiment_id, version,
                seconds * 1e3)
        return policy

    # --- the watcher ------------------------------------------------------------------

    @property
    def watched(self) -> bool:
        """Whether a live background thread keeps the bandits fresh. With `check_seconds`
        0 requests check themselves even then: every request sees a snapshot (an import, a
        reset) committed before it began, whichever process published it."""
        return (self.check_seconds > 0 and self._watcher is not None
                and self._watcher.is_alive())

    def watch(self, factory: Callable[[], Session], wakeup: Wakeup | None = None) -> None:
        """Keep the cached bandits fresh from a background thread of this process, every
        `check_seconds` and whenever `wakeup` says a snapshot was published (call it after
        forking: threads do not survive a fork). `wakeup` is closed by `unwatch`."""
        if not self.watched:
            self._watcher = _Watcher(self, factory, wakeup)
            self._watcher.start()

    def unwatch(self) -> None:
        """Stop the background thread (requests check for snapshots themselves again)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def refresh(self, session: Session) -> int:
        """Load the newer snapshots of the cached bandits and swap them in; how many.

        One indexed query (the newest version of each cached experiment) when nothing is
        new; the bytes are read only for a version to load."""
        with self._lock:
            entries = dict(self._bandits)
        if not entries:
            return 0
        newest: dict[int, int] = {row[0]: row[1] for row in session.execute(
            sa.select(Model.experiment_id, sa.func.max(Model.version))
            .where(Model.experiment_id.in_(list(entries))).group_by(Model.experiment_id))}
        return sum(self._refresh_one(session, experiment_id, entry, newest.get(experiment_id, 0))
                   for experiment_id, entry in entries.items())

    def _refresh_one(self, session: Session, experiment_id: int, entry: _Entry,
                     newest: int) -> int:
        if newest == entry.newest_seen:
            return 0
        arguments = entry.policy.arguments
        latest = latest_version(session, experiment_id, arguments)
        policy = None if latest == entry.policy.version else \
            self._load(session, experiment_id, arguments, latest)
        with self._lock:
            if self._bandits.get(experiment_id) is not entry:
                return 0  # a request replaced it meanwhile (settings changed)
            if policy is None:
                entry.newest_seen = newest
                return 0
            self._bandits[experiment_id] = _Entry(policy, time.monotonic(), newest)
        return 1

    def frozen(self, session: Session, experiment: Experiment, version: int) -> VWPolicy:
        """A specific snapshot (`model:<n>` champions and arms), kept in a small LRU."""
        key = (experiment.id, version)
        with self._lock:
            if key in self._frozen:
                self._frozen.move_to_end(key)
                return self._frozen[key]
        arguments = session.scalar(sa.select(Model.arguments).where(
            Model.experiment_id == experiment.id, Model.version == version))
        data = model_bytes(session, experiment.id, version)
        if arguments is None or data is None:
            raise Unprocessable(f"model version {version} does not exist")
        policy = VWPolicy(arguments, data, version=version)
        with self._lock:
            self._frozen[key] = policy
            while len(self._frozen) > FROZEN_CACHE_SIZE:
                self._frozen.popitem(last=False)
        return policy

    def resolve(self, session: Session, experiment: Experiment, spec: str) -> Policy:
        """The policy behind an arm or champion spec: bandit, uniform, baseline (the first
        offered action), fixed:<a>, model:<n>."""
        if spec == "bandit":
            return self.bandit(session, experiment)
        if spec == "uniform":
            return UniformPolicy()
        if spec == "baseline":
            return BaselinePolicy()
        if spec.startswith("fixed:"):
            return FixedPolicy(spec[6:])
        if spec.startswith("model:"):
            return self.frozen(session, experiment, int(spec[6:]))
        raise ValueError(f"unknown policy spec {spec!r}")


class _Watcher(threading.Thread):
    """The background thread of `PolicyCache.watch`."""

    def __init__(self, cache: PolicyCache, factory: Callable[[], Session],
                 wakeup: Wakeup | None) -> None:
        super().__init__(name="tailor-model-watch", daemon=True)
        self._cache, self._factory, self._wakeup = cache, factory, wakeup
        self._stop_event = threading.Event()
        self._failing = False

    def stop(self) -> None:
        self._stop_event.set()
        if self._wakeup is not None:
            self._wakeup.interrupt()
        self.join(5)
        if self._wakeup is not None:
            self._wakeup.close()

    def _wait(self) -> None:
        seconds = max(self._cache.check_seconds, 0.01)
        if self._wakeup is None:
            self._stop_event.wait(seconds)
        else:
            self._wakeup.wait(seconds)

    def run(self) -> None:
        while not self._stop_event.is_set():
            if self._cache.check_seconds <= 0:  # requests check themselves (`watched`)
                self._stop_event.wait(1.0)
                continue
            self._wait()
            if self._stop_event.is_set():
                return
            try:
                with self._factory() as session:
                    self._cache.refresh(session)
                self._failing = False
            except Exception as exc:  # a database outage: keep serving, retry next tick
                if not self._failing:
                    log.warning("cannot check for newer model snapshots: %s", exc)
                self._failing = True


def latest_version(session: Session, experiment_id: int, arguments: str | None = None) -> int:
    """The newest snapshot version (of these arguments, if given); 0 when there is none."""
    query = sa.select(sa.func.max(Model.version)).where(Model.experiment_id == experiment_id)
    if arguments is not None:
        query = query.where(Model.arguments == arguments)
    return session.scalar(query) or 0



def model_bytes(session: Session, experiment_id: int, version: int) -> bytes | None:
    """A snapshot's model bytes (None: no such version), in the session's transaction.

    Every worker reads each snapshot the learner publishes (1.5 MB for bench.rank's
    experiment, once a second at 1,000 decisions/s). Over PostgreSQL's text protocol a
    bytea travels hex-encoded: the server spent 2.8-3.4 ms of CPU encoding one such read
    and the worker 3.9-4.4 ms decoding it, while holding the GIL; asked for in binary,
    0.8 ms each (bench/marks.py's parts; the measurement is in BENCHMARKS.md). psycopg
    offers binary results per cursor, which SQLAlchemy does not expose, hence the
    driver's own cursor on the session's connection.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return session.scalar(sa.select(Model.data).where(
            Model.experiment_id == experiment_id, Model.version == version))
    driver = connection.connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute("SELECT data FROM models WHERE experiment_id = %s AND version = %s",
                       (experiment_id, version))
        row = cursor.fetchone()
    return None if row is None else bytes(row[0])
