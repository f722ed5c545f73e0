"""Right to erasure: delete a unit's decisions and rewards from every experiment of a team.

A unit id is stored in clear or, when it is personal data, as the team's keyed hash
(`experiments.pii`); erasure matches both, so the caller always passes the clear id.
The unit's stored profile (`experiments.profiles`) goes too.
Everything that points at an erased decision goes with it: its reward events and their
idempotency keys, its own key, any other table referring to `decisions.id` (by foreign
key, or declared with `models.references` where partitioning rules a foreign key out),
and analyst-supplied candidate probabilities for its event id. Reports read the decision
log, so they stay consistent: they simply no longer count the unit. Model snapshots are
not retrained; they hold hashed feature weights, not records (see docs/security.md).

Every request, including one for a unit with nothing stored (200 with zero counts: erasure
is idempotent), is recorded in the audit log with the unit's keyed hash, never the clear id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import audit, pii, profiles
from experiments.errors import ValidationFailed
from experiments.models import Base, Candidate, CandidatePmf, Decision, Experiment

# Bulk deletes by subquery: the session holds none of these rows, nothing to synchronise.
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Erasure:
    """What one erasure removed."""

    unit_hash: str
    decisions: int
    rewards: int
    by_experiment: dict[str, int]
    profiles: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"unit": self.unit_hash, "decisions": self.decisions, "rewards": self.rewards,
                "experiments": self.by_experiment, "profiles": self.profiles}


def _unit_filter(team_id: int, forms: set[str]) -> sa.ColumnElement[bool]:
    team_experiments = sa.select(Experiment.id).where(Experiment.team_id == team_id)
    return sa.and_(Decision.experiment_id.in_(team_experiments), Decision.unit_id.in_(forms))


def _referencing_columns(target: sa.Table) -> list[sa.Column]:
    """Every column of another table that refers to `target.id`, by foreign key or by
    declaration (decision_keys, reward_events → decisions; reward_keys → reward_events)."""
    name = f"{target.name}.id"
    return [column for table in Base.metadata.sorted_tables if table is not target
            for column in table.columns
            if column.info.get("references") == name
            or any(fk.column.table is target and fk.column.name == "id"
                   for fk in column.foreign_keys)]


def _counts(session: Session, condition: sa.ColumnElement[bool]) -> dict[str, int]:
    rows = session.execute(
        sa.select(Experiment.key, sa.func.count()).join(Decision, Decision.experiment_id ==
                                                         Experiment.id)
        .where(condition).group_by(Experiment.key).order_by(Experiment.key))
    return {key: count for key, count in rows}


def delete_dependents(session: Session, condition: sa.ColumnElement[bool]) -> int:
    """Delete rows pointing at the matched decisions; returns how many reward events went."""
    deleted = _delete_referring(session, cast(sa.Table, Decision.__table__),
                                sa.select(Decision.id).where(condition))
    same_event = (sa.select(Decision.id)
                  .join(Candidate, Candidate.experiment_id == Decision.experiment_id)
                  .where(condition, Candidate.id == CandidatePmf.candidate_id,
                         Decision.event_id == CandidatePmf.event_id))
    session.execute(sa.delete(CandidatePmf).where(same_event.exists()),
                    execution_options=_NO_SYNC)
    return deleted.get("reward_events", 0)


def _delete_referring(session: Session, target: sa.Table,
                      ids: sa.Select[Any]) -> dict[str, int]:
    """Delete the rows referring to `ids` of `target`, and theirs first; rows per table."""
    deleted: dict[str, int] = {}
    for column in _referencing_columns(target):
        table = cast(sa.Table, column.table)
        if "id" in table.c:
            deleted.update(_delete_referring(
                session, table, sa.select(table.c.id).where(column.in_(ids))))
        result = cast(sa.CursorResult[Any], session.execute(
            sa.delete(table).where(column.in_(ids)), execution_options=_NO_SYNC))
        deleted[table.name] = deleted.get(table.name, 0) + (result.rowcount or 0)
    return deleted


def erase_unit(session: Session, actor: audit.Actor | audit.KeyPrincipal, unit_id: str,
               salt: str) -> Erasure:
    """Erase every decision of `unit_id` (clear or hashed) in the actor's team; commits.

    Idempotent: a unit with nothing stored (or already erased) erases nothing and answers
    zero counts. Every request is in the audit log, with the counts.

    Raises:
        ValidationFailed: an empty or over-long unit id.
    """
    if not unit_id or len(unit_id) > 256:
        raise ValidationFailed.field("unit_id", "must be 1 to 256 characters")
    unit_hash = pii.keyed_hash(salt, unit_id)
    condition = _unit_filter(actor.team_id, {unit_id, unit_hash})
    by_experiment = _counts(session, condition)
    removed_profiles = profiles.remove(session, actor.team_id, {unit_id, unit_hash})
    rewards = delete_dependents(session, condition) if by_experiment else 0
    deleted = cast(sa.CursorResult[Any], session.execute(
        sa.delete(Decision).where(condition), execution_options=_NO_SYNC)).rowcount or 0
    erasure = Erasure(unit_hash, deleted, rewards, by_experiment, removed_profiles)
    audit.record(session, actor, "unit.erase", unit_hash,
                 {"decisions": deleted, "rewards": rewards, "experiments": by_experiment,
                  "profiles": removed_profiles})
    session.commit()
    return erasure
