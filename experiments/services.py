"""The rank and reward services: built once per app (app.create_app), they own their
caches and their unit of work, and every adapter (the v1 hot path, Personalizer's data
plane) calls them with a typed command.

A service opens an ORM session only when a rank needs one (a cache miss, a model check,
a replay, a profile lookup): creating and closing one costs ~20 µs, a tenth of what a
whole rank may cost, and most ranks never read anything (experiments.ranking).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from bandits.features import FeatureTypes, feature_types
from experiments import ranking, rewards
from experiments.direct import Direct
from experiments.limits import ContextLimits
from experiments.policies import PolicyCache
from experiments.profiles import ProfileCache


@dataclass(frozen=True)
class Caller:
    """Who asks: the key's team, its PII salt, and the key id that the write must find
    unrevoked (None: the key was read fresh, not from keys.KeyCache)."""

    team_id: int
    pii_salt: str
    key_id: str | None


class OnDemandSession:
    """An ORM session opened on first use, closed (rolled back) by `close`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._session: Session | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._sessions()
        return getattr(self._session, name)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


# The adapter's parser: its wire body into a rank command, given the experiment's
# declared feature types (validation needs them), the action limit and the size limits.
RankParser = Callable[[FeatureTypes, int, ContextLimits], ranking.RankRequest]


class RankService:
    """Choose, log durably, answer (experiments.ranking), with this process's caches."""

    def __init__(self, sessions: sessionmaker[Session], direct: Direct,
                 policies: PolicyCache, profile_check_seconds: float,
                 max_actions: int, limits: ContextLimits) -> None:
        self.sessions = sessions
        self.direct = direct
        self.policies = policies
        self.profiles = ProfileCache(profile_check_seconds)
        self.experiments = ranking.ExperimentCache()
        self.max_actions = max_actions
        self.limits = limits

    def rank(self, caller: Caller, key: str, parse: RankParser) -> dict[str, Any]:
        """Rank for experiment `key` of the caller's team; the answer (API.md)."""
        reads = OnDemandSession(self.sessions)
        session = cast(Session, reads)
        try:
            experiment = self.experiments.get(session, caller.team_id, key)
            command = parse(feature_types(experiment.config.get("feature_types")),
                            self.max_actions, self.limits)
            return ranking.rank(session, experiment, command, self.policies,
                                caller.pii_salt, self.experiments, direct=self.direct,
                                key_id=caller.key_id, profiles=self.profiles)
        finally:
            reads.close()


class RewardService:
    """Record one reward of a decision, found by its event id, in one transaction."""

    def __init__(self, direct: Direct) -> None:
        self.direct = direct

    def record(self, caller: Caller, reward: rewards.RewardInput) -> str:
        """"accepted", "late" or "duplicate" (experiments.rewards.store)."""
        return self.direct.run(lambda tx: rewards.store_one(
            tx, caller.team_id, reward, None, caller.key_id))
