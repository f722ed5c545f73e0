"""Per-process policies for each experiment, with a cheap check for newer model snapshots.

VW workspaces are built here, lazily, inside the worker process (after gunicorn forks),
never per request: a request reuses the cached policy, and at most once per
`check_seconds` asks the database whether the learner published a newer snapshot.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits.policy import BaselinePolicy, FixedPolicy, Policy, UniformPolicy, VWPolicy
from experiments.config import bandit_arguments
from experiments.errors import Unprocessable
from experiments.models import Experiment, Model

__all__ = ["PolicyCache", "bandit_arguments", "latest_version"]

FROZEN_CACHE_SIZE = 16


@dataclass
class _Entry:
    policy: VWPolicy
    checked_at: float


class PolicyCache:
    """The policies one process serves from (thread-safe)."""

    def __init__(self, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._bandits: dict[int, _Entry] = {}
        self._frozen: OrderedDict[tuple[int, int], VWPolicy] = OrderedDict()
        self._lock = threading.Lock()

    def bandit(self, session: Session, experiment: Experiment) -> VWPolicy:
        """The newest snapshot of the experiment's learner (a fresh model before the first)."""
        # Derived once per configuration version (validating the learner settings again
        # on every rank cost more than the rest of this lookup); rank's cached experiment
        # is parsed once per version (experiments.config.of).
        arguments = experiment.settings.learner.vw_arguments
        now = time.monotonic()
        entry = self._bandits.get(experiment.id)
        fresh = entry is not None and entry.policy.arguments == arguments
        if fresh and now - entry.checked_at < self.check_seconds:  # type: ignore[union-attr]
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
        if version == 0:
            return VWPolicy(arguments)
        data = session.scalar(sa.select(Model.data).where(
            Model.experiment_id == experiment_id, Model.version == version))
        return VWPolicy(arguments, data, version=version)

    def frozen(self, session: Session, experiment: Experiment, version: int) -> VWPolicy:
        """A specific snapshot (`model:<n>` champions and arms), kept in a small LRU."""
        key = (experiment.id, version)
        with self._lock:
            if key in self._frozen:
                self._frozen.move_to_end(key)
                return self._frozen[key]
        row = session.execute(sa.select(Model.arguments, Model.data).where(
            Model.experiment_id == experiment.id, Model.version == version)).first()
        if row is None:
            raise Unprocessable(f"model version {version} does not exist")
        policy = VWPolicy(row.arguments, row.data, version=version)
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


def latest_version(session: Session, experiment_id: int, arguments: str | None = None) -> int:
    """The newest snapshot version (of these arguments, if given); 0 when there is none."""
    query = sa.select(sa.func.max(Model.version)).where(Model.experiment_id == experiment_id)
    if arguments is not None:
        query = query.where(Model.arguments == arguments)
    return session.scalar(query) or 0

