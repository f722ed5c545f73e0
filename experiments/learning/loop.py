"""The learner process: every selected experiment, one lease each, round-robin batches.

``run`` serves until its stop event is set (SIGTERM/SIGINT in ``tailor learn``), then
commits what it learned, releases its leases and returns. It wakes when the next
decision's window closes (plus the grace period), not on a fixed poll, so a decision is
learned within ``pace_seconds`` of becoming learnable; and while decisions close in a
steady stream it takes them ``pace_seconds`` at a time rather than spinning on one or two
per round (each round costs a few indexed queries, whatever it finds). ``drain``
(``--once``) learns everything closed by now and returns a report. Several processes may run: each
experiment is learned by whichever holds its lease, so they shard the experiments.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from experiments import clock
from experiments.learning.learner import ExperimentLearner, FaultHook, LearnerSettings
from experiments.learning.lease import LeaseLost, new_owner
from experiments.models import Decision, Experiment, LearnerState, Team

log = logging.getLogger("tailor.learner")

LEARNED_STATUSES = ("running", "paused")  # paused: drain what closed before the pause
ERROR_BACKOFF_SECONDS = 1.0
QUEUE_CHUNK = 100  # experiments per queue query (one scalar subquery each)


@dataclass(frozen=True)
class Queue:
    """What the learner's experiments have to learn: those with closed decisions now, and
    when the next unlearned decision of the others closes (None: none in a window)."""

    ready: set[int]
    next_closes_at: float | None = None


@dataclass(frozen=True)
class Selection:
    """Which experiments this process learns: all, or by key (optionally of one team)."""

    keys: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True)
class DrainReport:
    experiments: int
    processed: int
    seconds: float
    busy: tuple[str, ...]  # experiments another learner holds


class LearnerLoop:
    """Drives one ``ExperimentLearner`` per selected experiment whose lease it holds."""

    def __init__(self, factory: sessionmaker[Session], settings: LearnerSettings | None = None,
                 selection: Selection | None = None, owner: str | None = None,
                 poll_seconds: float = 0.1, refresh_seconds: float = 1.0,
                 pace_seconds: float | None = None,
                 fault_hook: FaultHook | None = None,
                 maintenance: Callable[[], object] | None = None,
                 maintenance_seconds: float = 3600.0,
                 on_publish: Callable[[], object] | None = None) -> None:
        self.settings = settings or LearnerSettings()
        self.selection = selection or Selection()
        self.owner = owner or new_owner()
        self.poll_seconds, self.refresh_seconds = poll_seconds, refresh_seconds
        pace = self.settings.pace_seconds if pace_seconds is None else pace_seconds
        self.pace_seconds = min(pace, poll_seconds)
        self._full = False  # the last round read a full batch: more is waiting
        self._busy_round = False  # the last round learned something
        self._next_closes_at: float | None = None
        self._factory = factory
        self._hook = fault_hook
        self._learners: dict[int, ExperimentLearner] = {}
        self._refreshed_at = float("-inf")
        self._busy: list[str] = []
        # Database upkeep run at start and every `maintenance_seconds` (the partitions).
        self._maintenance, self._maintenance_seconds = maintenance, maintenance_seconds
        self._maintained_at = float("-inf")
        # Called after a round that published a snapshot (app/snapshot_signal.py).
        self._on_publish = on_publish

    def run(self, stop: threading.Event) -> None:
        """Learn until ``stop`` is set; then commit, release the leases and return."""
        log.info("learner %s started (%s)", self.owner, self.settings)
        try:
            while not stop.is_set():
                self._maintain_when_due()
                started = time.monotonic()
                self._round()
                stop.wait(self._pause(time.monotonic() - started))
        finally:
            self.close()
        log.info("learner %s stopped", self.owner)

    def drain(self) -> DrainReport:
        """Learn every decision closed by now, commit, release; report what was done."""
        started = time.perf_counter()
        try:
            self._refresh()
            learners = list(self._learners.values())
            for learner in learners:
                _drain_one(learner)
        finally:
            self.close()
        return DrainReport(len(learners), sum(learner.committed for learner in learners),
                           time.perf_counter() - started, tuple(self._busy))

    def close(self) -> None:
        for learner in self._learners.values():
            learner.stop()
        self._learners.clear()

    def _pause(self, elapsed: float) -> float:
        """How long to wait before the next round: none while a backlog remains; the rest
        of ``pace_seconds`` after a round that learned (more is closing); when idle, until
        the next decision becomes learnable, at most ``poll_seconds`` (snapshots due and
        leases are looked at each round)."""
        if self._full:
            return 0.0
        wait = self.poll_seconds
        if self._busy_round:  # a stream: its next decisions close any moment
            wait = 0.0
        elif self._next_closes_at is not None:
            learnable_in = self._next_closes_at + self.settings.grace_seconds - clock.now()
            wait = min(wait, learnable_in)
        due = [d for d in (x.due_in() for x in self._learners.values()) if d is not None]
        return max(min([wait, *due]), self.pace_seconds - elapsed, 0.0)

    def _round(self) -> int:
        """Step the experiments that have closed decisions to learn; keep the others'
        leases alive. Two indexed queries decide which, so idle experiments cost little."""
        if time.monotonic() - self._refreshed_at >= self.refresh_seconds:
            self._guarded(self._refresh)
        self._full, self._busy_round, self._next_closes_at = False, False, None
        try:
            queue = self._queue()
        except SQLAlchemyError as exc:
            log.warning("cannot read the queue, retrying: %s", exc)
            time.sleep(ERROR_BACKOFF_SECONDS)
            return 0
        self._next_closes_at = queue.next_closes_at
        published = self._published()
        processed = [self._step(experiment_id, experiment_id in queue.ready)
                     for experiment_id in list(self._learners)]
        if self._on_publish is not None and self._published() != published:
            self._on_publish()
        self._full = any(count >= self.settings.batch_size for count in processed)
        self._busy_round = any(processed)
        return sum(processed)

    def _published(self) -> int:
        return sum(learner.published for learner in self._learners.values())

    def _queue(self) -> Queue:
        """The oldest unlearned ``closes_at`` of each experiment, read from the partial
        index on unlearned decisions (one row per experiment, however long the queue)."""
        if not self._learners:
            return Queue(set())
        cutoff = clock.now() - self.settings.grace_seconds
        ids = list(self._learners)
        oldest: dict[int, float | None] = {}
        with self._factory() as session:
            for start in range(0, len(ids), QUEUE_CHUNK):
                chunk = ids[start:start + QUEUE_CHUNK]
                row = session.execute(sa.select(*(_oldest_unlearned(i) for i in chunk))).one()
                oldest.update(zip(chunk, row, strict=True))
        closes = [at for at in oldest.values() if at is not None]
        return Queue({i for i, at in oldest.items() if at is not None and at <= cutoff},
                     min((at for at in closes if at > cutoff), default=None))

    def _step(self, experiment_id: int, ready: bool = True) -> int:
        learner = self._learners[experiment_id]
        try:
            return abs(learner.step()) if ready else learner.tick()
        except LeaseLost as exc:
            log.warning("%s", exc)
            del self._learners[experiment_id]
        except SQLAlchemyError as exc:
            log.warning("experiment %s: database error, retrying: %s", experiment_id, exc)
            time.sleep(ERROR_BACKOFF_SECONDS)
        except Exception:
            # The learner dropped its uncommitted work; it reloads on the next step.
            log.exception("experiment %s: learner failed; retrying", experiment_id)
            time.sleep(ERROR_BACKOFF_SECONDS)
        return 0

    def _maintain_when_due(self) -> None:
        if self._maintenance is None or \
                time.monotonic() - self._maintained_at < self._maintenance_seconds:
            return
        self._maintained_at = time.monotonic()
        try:
            self._maintenance()
        except Exception:
            # Not the learner's job to fail for: partitions exist days ahead, and rows
            # without one wait in the DEFAULT partition until a later round succeeds.
            log.exception("database maintenance failed; retrying in %.0fs",
                          self._maintenance_seconds)

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except SQLAlchemyError as exc:
            log.warning("cannot list experiments, retrying: %s", exc)

    def _refresh(self) -> None:
        self._refreshed_at = time.monotonic()
        wanted = self._candidates()
        for experiment_id in set(self._learners) - set(wanted):
            self._learners.pop(experiment_id).stop()
        self._busy = []
        for experiment_id, (label, available) in wanted.items():
            if experiment_id in self._learners:
                continue
            if available:
                learner = ExperimentLearner(self._factory, experiment_id, self.owner,
                                            self.settings, self._hook)
                if learner.start():
                    self._learners[experiment_id] = learner
                    continue
            self._busy.append(label)

    def _candidates(self) -> dict[int, tuple[str, bool]]:
        """Selected experiments → (label, lease free or ours)."""
        now = clock.now()
        query = (sa.select(Experiment.id, Experiment.key, Team.name, LearnerState.lease_owner,
                           LearnerState.lease_expires_at)
                 .join(Team, Team.id == Experiment.team_id)
                 .outerjoin(LearnerState, LearnerState.experiment_id == Experiment.id)
                 .where(Experiment.status.in_(LEARNED_STATUSES)).order_by(Experiment.id))
        if self.selection.keys:
            query = query.where(Experiment.key.in_(self.selection.keys))
        if self.selection.team:
            query = query.where(Team.name == self.selection.team)
        with self._factory() as session:
            rows = session.execute(query).all()
        return {r.id: (f"{r.name}/{r.key}", r.lease_owner in (None, self.owner)
                       or (r.lease_expires_at or 0.0) < now) for r in rows}


def _oldest_unlearned(experiment_id: int) -> sa.ScalarSelect[float | None]:
    return (sa.select(sa.func.min(Decision.closes_at))
            .where(Decision.experiment_id == experiment_id,
                   Decision.learned_version.is_(None)).scalar_subquery())


def _drain_one(learner: ExperimentLearner) -> None:
    """Learn until nothing closed is left and the last snapshot committed cleanly."""
    while True:
        restarts = learner.restarts
        while learner.step() != 0:
            pass
        learner.flush()
        if learner.restarts == restarts:
            return
