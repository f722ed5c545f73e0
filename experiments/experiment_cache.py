"""Experiments as a rank reads them: a read-only snapshot at one version, cached per
process by (team, key) so that a rank need not read its experiment (experiments.ranking
checks the version when it writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from experiments import registry
from experiments.config import ExperimentConfig
from experiments.models import Experiment


@dataclass(frozen=True)
class ExperimentSnapshot:
    """What rank needs of an experiment, as read at `version` (read-only, shared by the
    threads of a process)."""

    id: int
    team_id: int
    key: str
    status: str
    version: int
    config: dict[str, Any]
    settings: ExperimentConfig  # `config` parsed, once per cached version

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentSnapshot:
        return cls(experiment.id, experiment.team_id, experiment.key, experiment.status,
                   experiment.version, experiment.config, experiment.settings)


class ExperimentCache:
    """This process's experiments by (team, key), so that rank need not read them.

    Entries do not expire: `rank` writes a decision only if the experiment is still at the
    cached version, and reads it again when it is not (or when the cached configuration
    refuses the request), so a change made through any process applies to the next rank.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: dict[tuple[int, str], ExperimentSnapshot] = {}

    def get(self, session: Session, team_id: int, key: str) -> ExperimentSnapshot:
        found = self._entries.get((team_id, key))
        return found if found is not None else self.reload(session, team_id, key)

    def reload(self, session: Session, team_id: int, key: str) -> ExperimentSnapshot:
        snapshot = reload_snapshot(session, team_id, key)
        if len(self._entries) >= self.size:
            self._entries.clear()  # more experiments than entries: start over
        self._entries[(team_id, key)] = snapshot
        return snapshot


def reload_snapshot(session: Session, team_id: int, key: str) -> ExperimentSnapshot:
    return ExperimentSnapshot.of(registry.get(session, team_id, key))
