"""A rank's decision, logged durably: the row, the write (key claim + row, committed in
one step through experiments.direct), the replay of an event id already used, and the
answer built from a logged decision."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from experiments import clock, keys
from experiments.direct import Direct
from experiments.errors import Conflict, Unauthorized
from experiments.experiment_cache import ExperimentSnapshot
from experiments.keyed import claim_then_insert
from experiments.models import Decision, DecisionKey, Experiment, NextDecisionId, decision_of_key
from experiments.rank_commands import RankCommand


def decision_row(experiment: Experiment | ExperimentSnapshot, request: RankCommand,
              event_id: str, arm: str, spec: str, phase: str, unit: str | None,
              context: dict[str, Any], actions: list[dict[str, Any]], pmf: list[float],
              chosen: int, model_version: int | None) -> dict[str, Any]:
    """The decision row's column values."""
    now = clock.now()
    window = experiment.settings.window_seconds
    active = not request.defer_activation
    policy_name = f"model:{model_version}" if spec == "bandit" else spec
    return dict(
        experiment_id=experiment.id, event_id=event_id, request_hash=request.request_hash,
        arm=arm, policy=policy_name[:160], model_version=model_version,
        experiment_version=experiment.version, phase=phase, unit_id=unit, context=context,
        actions=actions, pmf=pmf, chosen_index=chosen, action_id=actions[chosen]["id"],
        propensity=pmf[chosen], deferred=request.defer_activation,
        activated_at=now if active else None, closes_at=now + window if active else None,
        reward=None, reward_count=0, learned_version=None, created_at=now,
        profile_version=None, profile_status=None)


def commit_decision(session: Session, experiment: Experiment | ExperimentSnapshot,
            row: dict[str, Any], request: RankCommand, direct: Direct,
            key_id: str | None) -> dict[str, Any] | None:
    """Insert and commit in one step; the stored answer if the event id was taken;
    None if the experiment changed version meanwhile (nothing written).

    Raises:
        Unauthorized: `key_id` was revoked after this process cached it.
    """
    values = {**row, "current_version": experiment.version, "auth_key_id": key_id}
    found = direct.chain(_insert_statements(direct.engine.dialect.name), values,
                         link="decision_id")
    if found is not None:
        return answer(cast(Decision, SimpleNamespace(**row)))
    if key_id is not None and not keys.is_active(session, key_id):
        raise Unauthorized("invalid or revoked API key")
    previous = find_decision(session, experiment.id, row["event_id"])
    return None if previous is None else _replay(previous, request)


@functools.cache
def _insert_statements(dialect: str) -> tuple[sa.Executable, ...]:
    """The rank write, run in order in one transaction, each binding the previous one's
    result as `decision_id`; nothing more is run once one returns no row.

    It claims the idempotency key first: INSERT INTO decision_keys ... SELECT <new id>
    WHERE <the experiment is still at current_version> AND <the caller's key, if cached,
    is unrevoked> ON CONFLICT (experiment_id, event_id) DO NOTHING RETURNING
    decision_id, then inserts the decision with that id. No row: the event id was taken
    (replay it), the experiment changed (reload it) or the key was revoked (refuse).
    PostgreSQL runs both as one statement (a data-modifying CTE); SQLite, which has no
    such CTE, as two statements of the write transaction, which holds its single write
    lock throughout. Built once per dialect; each rank only binds its values."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    key = (insert(DecisionKey).from_select(_KEY_COLUMNS, sa.select(
        sa.bindparam("experiment_id", type_=sa.Integer),
        sa.bindparam("event_id", type_=sa.String), NextDecisionId(),
        sa.bindparam("created_at", type_=sa.Double)).where(_still_current(),
                                                           keys.active_key_guard()))
        .on_conflict_do_nothing(index_elements=["experiment_id", "event_id"])
        .returning(DecisionKey.decision_id))
    return claim_then_insert(dialect, key, cast(sa.Table, Decision.__table__), "decision_id")


def _still_current() -> sa.Exists:
    return sa.exists().where(Experiment.id == sa.bindparam("experiment_id"),
                             Experiment.version == sa.bindparam("current_version"))


_KEY_COLUMNS = ["experiment_id", "event_id", "decision_id", "created_at"]


def _replay(previous: Decision, request: RankCommand) -> dict[str, Any]:
    if previous.request_hash != request.request_hash:
        raise Conflict(f"event_id {previous.event_id!r} was already used with another payload")
    return answer(previous)


def find_decision(session: Session, experiment_id: int, event_id: str) -> Decision | None:
    """The decision logged under this event id, through its key (one index probe, then one
    partition), however long ago it was written."""
    return session.scalars(sa.select(Decision).join(DecisionKey, decision_of_key()).where(
        DecisionKey.experiment_id == experiment_id, DecisionKey.event_id == event_id)).first()


def ranking(decision: Decision) -> list[dict[str, Any]]:
    """Every offered action once: the chosen first, then by probability (ties: offer order)."""
    order = sorted(range(len(decision.pmf)), key=lambda i: (i != decision.chosen_index,
                                                            -decision.pmf[i], i))
    return [{"id": decision.actions[i]["id"], "probability": decision.pmf[i]} for i in order]


def answer(decision: Decision) -> dict[str, Any]:
    return {"event_id": decision.event_id, "action_id": decision.action_id,
            "probability": decision.propensity, "ranking": ranking(decision),
            "arm": decision.arm, "policy": decision.policy,
            "model_version": decision.model_version,
            "deferred": decision.deferred}
