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

from bandits.features import FeatureTypes
from experiments import rank_commands, ranking, rewards
from experiments.direct import Direct
from experiments.experiment_cache import ExperimentCache
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


@dataclass(frozen=True)
class Settings:
    """The app's settings a rank reads (read per rank: an app's configuration may change
    after it was built, as tests do)."""

    max_actions: int
    limits: ContextLimits
    profiles: ProfileCache


# The adapter's parser: its wire body into a rank command, given the experiment's
# declared feature types (validation needs them), the action limit and the size limits.
RankParser = Callable[[FeatureTypes, int, ContextLimits], rank_commands.RankCommand]


class RankService:
    """Choose, log durably, answer (experiments.ranking), with this process's caches."""

    def __init__(self, sessions: sessionmaker[Session], direct: Direct,
                 policies: PolicyCache, settings: Callable[[], Settings]) -> None:
        self.sessions = sessions
        self.direct = direct
        self.policies = policies
        self.settings = settings
        self.experiments = ExperimentCache()

    def rank(self, caller: Caller, key: str, parse: RankParser) -> dict[str, Any]:
        """Rank for experiment `key` of the caller's team; the answer (API.md)."""
        reads = OnDemandSession(self.sessions)
        session = cast(Session, reads)
        try:
            experiment = self.experiments.get(session, caller.team_id, key)
            settings = self.settings()
            command = parse(experiment.settings.types,
                            settings.max_actions, settings.limits)
            return ranking.rank(session, experiment, command, self.policies,
                                caller.pii_salt, self.experiments, direct=self.direct,
                                key_id=caller.key_id, profiles=settings.profiles)
        finally:
            reads.close()


class RewardService:
    """Record one reward of a decision, found by its event id, in one transaction."""

    def __init__(self, direct: Direct) -> None:
        self.direct = direct

    def record(self, caller: Caller, reward: rewards.RewardCommand) -> str:
        """"accepted", "late" or "duplicate" (experiments.rewards.store)."""
        return self.direct.run(lambda tx: rewards.store_one(
            tx, caller.team_id, reward, None, caller.key_id))
