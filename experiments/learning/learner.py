"""One experiment's learner: closed decisions → VW updates → snapshots, exactly once.

Between two snapshots the learner learns in memory and remembers which decisions it
learned. A snapshot commits, in ONE transaction: the lease renewal (the fence), the new
``models`` row, ``learned_version`` on every decision it includes (and ``SKIPPED`` on the
closed ones it must not learn from), and the learner's counters. A learner killed at any
instant therefore resumes from the newest snapshot and re-learns exactly the decisions
that snapshot does not include: they still have ``learned_version IS NULL``.

Not thread-safe: one learner object per experiment, driven by one thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bandits.features import FeatureError, FeatureTypes
from bandits.learner import OnlineLearner
from bandits.policy import (
    BaselinePolicy,
    FixedPolicy,
    Policy,
    PolicyError,
    UniformPolicy,
    VWPolicy,
)
from experiments import clock
from experiments.learning import join, lease, snapshots
from experiments.learning.join import ClosedDecision, Cursor
from experiments.learning.progress import DEFAULT_WINDOW, Observation, Progress
from experiments.models import Experiment, LearnerState, Model
from experiments.policies import latest_version

log = logging.getLogger("tailor.learner")

FaultHook = Callable[[str], None]
"""Called with a stage name ("learned", "before_commit"); tests raise there to simulate
a learner killed between learning and committing."""


@dataclass(frozen=True)
class LearnerSettings:
    """How often to snapshot, how long to wait for commits, how long a lease lasts.

    A snapshot is committed when ``snapshot_examples`` are pending, when the oldest pending
    example has waited ``snapshot_seconds``, or, once the learner has caught up with the
    queue, when the examples pending are at least ``snapshot_fraction`` of all the model
    has learned: a young model, which every example still changes much, is published after
    each round (so the first decisions of an experiment are not all served by the untrained
    model), a mature one at the pace of the other two rules. The number of snapshots this
    rule adds grows with the logarithm of the examples (ln 10 / ln(1 + fraction) per
    tenfold: 47 at 5%), so its cost is paid once, early.
    """

    snapshot_examples: int = 1000
    snapshot_seconds: float = 1.0
    snapshot_fraction: float = 0.05
    grace_seconds: float = 0.5
    batch_size: int = 500
    lease_seconds: float = 15.0
    keep_snapshots: int = 100
    prune_seconds: float = 30.0
    window: int = DEFAULT_WINDOW
    # While decisions close in a stream, the loop takes them this many seconds at a time
    # (`LearnerLoop`). Each round costs a few queries and a session whatever it finds: at
    # 1,000 decisions a second, 0.05 s instead of 0.02 s took the learner from 0.22-0.24 to
    # 0.15 cores and its database work from 0.47-0.54 to 0.40 (bench.soak, docs/learning.md),
    # for at most 0.03 s more before a decision is learned.
    pace_seconds: float = 0.05


RESTARTED = -1


class Superseded(RuntimeError):
    """Another snapshot of these arguments appeared (an import): start again from it."""


@dataclass
class _Lineage:
    """The model in memory and what it learned since the last commit."""

    arguments: str
    model: OnlineLearner
    base_version: int
    examples: int
    progress: Progress
    learned: dict[int, float | None] = field(default_factory=dict)  # id → reward as read
    skipped: list[int] = field(default_factory=list)
    created: join.Created | None = None  # of every learned or skipped decision
    export_seconds: float | None = None  # the experiment's service.model_export_seconds
    cursor: Cursor | None = None
    first_pending_at: float | None = None
    busy_seconds: float = 0.0
    caught_up: bool = False  # the last batch read all that was learnable

    @property
    def pending(self) -> int:
        return len(self.learned) + len(self.skipped)


class ExperimentLearner:
    """The learner of one experiment (see the module docstring)."""

    def __init__(self, factory: sessionmaker[Session], experiment_id: int, owner: str,
                 settings: LearnerSettings | None = None,
                 fault_hook: FaultHook | None = None) -> None:
        self.experiment_id = experiment_id
        self.owner = owner
        self.settings = settings or LearnerSettings()
        self._factory = factory
        self._hook = fault_hook or (lambda stage: None)
        self._lineage: _Lineage | None = None
        self._champion: tuple[str, Policy | None] | None = None
        self._renewed_at = float("-inf")
        self._pruned_at = float("-inf")
        self.restarts = 0  # uncommitted work dropped and re-learned (imports, races)
        self.committed = 0  # decisions committed (learned or skipped) by this object
        self.published = 0  # snapshots committed by this object

    def start(self) -> bool:
        """Take the experiment's lease; False when another learner holds it."""
        with self._factory() as session:
            held = lease.acquire(session, self.experiment_id, self.owner,
                                 self.settings.lease_seconds)
        self._renewed_at = time.monotonic() if held else float("-inf")
        return held

    def step(self) -> int:
        """Learn one batch of closed decisions, snapshot when due; the number processed,
        or ``RESTARTED`` when uncommitted work was dropped to be learned again."""
        restarts = self.restarts
        processed = self._guarded(self._step) or 0
        return RESTARTED if self.restarts != restarts else processed

    def tick(self) -> int:
        """Nothing new to read: snapshot if due, else keep the lease alive. Returns 0."""
        return self._guarded(self._tick) or 0

    def flush(self) -> int | None:
        """Commit what was learned now; the new version (None when nothing was new)."""
        return self._guarded(self._commit)

    def _guarded(self, action: Callable[[], int | None]) -> int | None:
        """Run ``action``; on any failure drop the uncommitted work (the next step reloads
        the newest snapshot). ``Superseded`` and ``QueueChanged`` only restart; anything
        else propagates."""
        try:
            return action()
        except (Superseded, join.QueueChanged) as exc:
            log.warning("experiment %s: %s; reloading the newest snapshot",
                        self.experiment_id, exc)
            self.reset()
            self.restarts += 1
            return None
        except BaseException:
            self.reset()
            raise

    def _tick(self) -> int:
        if self._due():
            self._commit()
        else:
            self._renew_if_needed()
        return 0

    def _step(self) -> int:
        processed = self._learn_batch()
        self._tick()
        return processed

    def stop(self) -> None:
        """Commit what is pending (best effort), release the lease, free the model."""
        try:
            self.flush()
        except Exception:
            log.exception("experiment %s: final snapshot failed; dropped", self.experiment_id)
        try:
            with self._factory() as session:
                lease.release(session, self.experiment_id, self.owner)
        except Exception:
            log.exception("experiment %s: lease not released", self.experiment_id)
        self.reset()

    def reset(self) -> None:
        """Forget everything not committed."""
        if self._lineage is not None:
            self._lineage.model.close()
        self._lineage = None
        self._champion = None

    @property
    def pending(self) -> int:
        return 0 if self._lineage is None else self._lineage.pending

    # --- learning ---------------------------------------------------------------------

    def _learn_batch(self) -> int:
        with self._factory() as session:
            experiment = session.get(Experiment, self.experiment_id)
            if experiment is None:
                return 0
            lineage = self._current_lineage(session, experiment)
            batch = join.fetch_closed(
                session, self.experiment_id, cutoff=clock.now() - self.settings.grace_seconds,
                after=lineage.cursor, limit=self.settings.batch_size,
                default=experiment.settings.reward.default)
            champion = self._champion_policy(session, experiment)
        started = time.perf_counter()
        for decision in batch:
            self._learn_one(lineage, decision, champion)
        lineage.busy_seconds += time.perf_counter() - started
        lineage.caught_up = len(batch) < self.settings.batch_size
        if batch:
            self._hook("learned")
        return len(batch)

    def _learn_one(self, lineage: _Lineage, decision: ClosedDecision,
                   champion: Policy | None) -> None:
        lineage.cursor = decision.cursor
        if lineage.first_pending_at is None:
            lineage.first_pending_at = time.monotonic()
        lineage.created = (join.Created(decision.created_at, decision.created_at)
                           if lineage.created is None
                           else lineage.created.including(decision.created_at))
        if not join.learnable(decision.phase, decision.arm):
            lineage.skipped.append(decision.decision_id)
            return
        try:
            before = lineage.model.learn(decision.context, decision.actions,
                                         decision.chosen_index, decision.reward,
                                         decision.propensity)
        except (FeatureError, ValueError, PolicyError) as exc:
            # Validated at rank time, so only a hand-edited row gets here: never learnable.
            log.warning("decision %s skipped: %s", decision.decision_id, exc)
            lineage.skipped.append(decision.decision_id)
            return
        lineage.learned[decision.decision_id] = decision.aggregate
        lineage.examples += 1
        lineage.progress = lineage.progress.observe(Observation(
            decision.arm, decision.reward, decision.propensity, before,
            _probability(champion, decision, lineage.model.types)))

    def _current_lineage(self, session: Session, experiment: Experiment) -> _Lineage:
        arguments = experiment.settings.learner.vw_arguments
        export = experiment.settings.service.model_export_seconds
        if self._lineage is not None and self._lineage.arguments == arguments:
            self._lineage.export_seconds = export
            return self._lineage
        if self._lineage is not None:
            log.info("experiment %s: learner settings changed; uncommitted work dropped",
                     self.experiment_id)
            self.reset()
        self._lineage = self._load(session, arguments, experiment.settings.types)
        self._lineage.export_seconds = export
        return self._lineage

    def _load(self, session: Session, arguments: str, types: FeatureTypes) -> _Lineage:
        """Continue the newest snapshot of these arguments, or start a fresh model."""
        model = snapshots.latest(session, self.experiment_id, arguments)
        if model is None:
            return _Lineage(arguments, OnlineLearner(arguments, types=types), 0, 0,
                            Progress(self.settings.window))
        metrics = model.metrics or {}
        return _Lineage(arguments, OnlineLearner(arguments, model.data, types), model.version,
                        model.examples_learned,
                        Progress.from_json(metrics.get("progressive"), self.settings.window))

    def _champion_policy(self, session: Session, experiment: Experiment) -> Policy | None:
        spec = experiment.settings.champion
        if self._champion is None or self._champion[0] != spec:
            self._champion = (spec, _load_champion(session, self.experiment_id, spec))
        return self._champion[1]

    # --- committing -------------------------------------------------------------------

    def due_in(self) -> float | None:
        """Seconds until what is pending must be snapshotted (<= 0: now; None: nothing
        pending). See ``LearnerSettings``."""
        lineage = self._lineage
        if lineage is None or not lineage.pending:
            return None
        waited = time.monotonic() - (lineage.first_pending_at or 0.0)
        if lineage.export_seconds is not None:  # the experiment's own snapshot cadence
            return lineage.export_seconds - waited
        if lineage.pending >= self.settings.snapshot_examples or self._young(lineage):
            return 0.0
        return self.settings.snapshot_seconds - waited

    def _young(self, lineage: _Lineage) -> bool:
        """Caught up, and what is pending is a large share of all the model learned."""
        fraction = self.settings.snapshot_fraction
        return (fraction > 0 and lineage.caught_up and bool(lineage.learned)
                and len(lineage.learned) >= fraction * lineage.examples)

    def _due(self) -> bool:
        due_in = self.due_in()
        return due_in is not None and due_in <= 0

    def _commit(self) -> int | None:
        lineage = self._lineage
        if lineage is None or not lineage.pending:
            return None
        data = lineage.model.to_bytes() if lineage.learned else None
        with self._factory() as session:
            lease.hold(session, self.experiment_id, self.owner, self.settings.lease_seconds)
            version = self._publish(session, lineage, data) if data is not None else None
            join.mark(session, lineage.skipped, join.SKIPPED, lineage.created)
            self._record(session, lineage, version)
            self._prune_if_due(session)
            self._hook("before_commit")
            session.commit()
        self._renewed_at = time.monotonic()
        self._advance(lineage, version)
        return version

    def _publish(self, session: Session, lineage: _Lineage, data: bytes) -> int:
        newest = latest_version(session, self.experiment_id, lineage.arguments)
        if newest != lineage.base_version:
            raise Superseded(f"version {newest} of these settings was published meanwhile")
        try:
            model = snapshots.publish(
                session, self.experiment_id, arguments=lineage.arguments, data=data,
                examples_learned=lineage.examples, source="learner",
                metrics={"progressive": lineage.progress.to_json(),
                         "examples_in_snapshot": len(lineage.learned)})
        except IntegrityError as exc:
            raise Superseded("another version was published at the same moment") from exc
        join.mark(session, list(lineage.learned), model.version, lineage.created)
        join.verify_rewards(session, lineage.learned, lineage.created)
        return model.version

    def _record(self, session: Session, lineage: _Lineage, version: int | None) -> None:
        state = session.get(LearnerState, self.experiment_id)
        assert state is not None  # hold() just updated it
        counters = dict(state.counters or {})
        counters.update({
            "examples_learned_total": counters.get("examples_learned_total", 0)
            + len(lineage.learned),
            "skipped_total": counters.get("skipped_total", 0) + len(lineage.skipped),
            "snapshots": counters.get("snapshots", 0) + (version is not None),
            "arguments": lineage.arguments, "last_commit_at": clock.now(),
            "examples_per_second": round(len(lineage.learned) / lineage.busy_seconds, 1)
            if lineage.busy_seconds > 0 and lineage.learned else None,
        })
        state.counters = counters
        if lineage.cursor is not None:
            state.watermark = {"closes_at": lineage.cursor.closes_at,
                               "decision_id": lineage.cursor.decision_id}

    def _prune_if_due(self, session: Session) -> None:
        if time.monotonic() - self._pruned_at < self.settings.prune_seconds:
            return
        experiment = session.get(Experiment, self.experiment_id)
        if experiment is not None:
            snapshots.prune(session, experiment, self.settings.keep_snapshots)
        self._pruned_at = time.monotonic()

    def _advance(self, lineage: _Lineage, version: int | None) -> None:
        self.committed += lineage.pending
        if version is not None:
            lineage.base_version = version
            self.published += 1
        lineage.learned, lineage.skipped, lineage.created = {}, [], None
        # Restart the scan from the oldest unlearned decision: a decision that committed
        # late (closes_at behind the cursor) is picked up by the next batch.
        lineage.cursor, lineage.first_pending_at, lineage.busy_seconds = None, None, 0.0

    def _renew_if_needed(self) -> None:
        if time.monotonic() - self._renewed_at < self.settings.lease_seconds / 3:
            return
        with self._factory() as session:
            lease.hold(session, self.experiment_id, self.owner, self.settings.lease_seconds)
            session.commit()
        self._renewed_at = time.monotonic()


def _load_champion(session: Session, experiment_id: int, spec: str) -> Policy | None:
    """The champion as a policy, for the paired comparison; None if its model is gone."""
    if spec == "uniform":
        return UniformPolicy()
    if spec == "baseline":
        return BaselinePolicy()
    if spec.startswith("fixed:"):
        return FixedPolicy(spec[6:])
    row = session.scalars(sa.select(Model).where(
        Model.experiment_id == experiment_id, Model.version == int(spec[6:]))).first()
    return None if row is None else VWPolicy(row.arguments, row.data, version=row.version)


def _probability(champion: Policy | None, decision: ClosedDecision,
                 types: FeatureTypes) -> float | None:
    if champion is None:
        return None
    try:
        return champion.pmf(decision.context, decision.actions, types)[decision.chosen_index]
    except (FeatureError, ValueError, PolicyError):
        return None
