"""Rewards: map typed events by the experiment's rule, store them once, join them to decisions.

A reward inside its decision's window updates the decision's running aggregate in the same
transaction (`sum`, `max`, or `earliest` = the first value received), so the learner and
the reports read one number per decision. A reward after the window closed is stored,
flagged late, and changes nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, load_only

from experiments import clock, keys
from experiments.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from experiments.models import (
    Decision,
    DecisionKey,
    Experiment,
    NextRewardEventId,
    RewardEvent,
    RewardKey,
    decision_of_key,
)

REWARD_FIELDS = {"type", "value", "idempotency_key", "event_id"}


@dataclass(frozen=True)
class RewardInput:
    event_id: str
    type: str
    value: float | None
    idempotency_key: str | None


def parse_reward(body: Any, event_id: str | None = None) -> RewardInput:
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    unknown = sorted(set(body) - REWARD_FIELDS)
    if unknown:
        raise ValidationFailed.field(unknown[0], "unknown field")
    event_id = event_id if event_id is not None else body.get("event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise ValidationFailed.field("event_id", "must be a non-empty string")
    kind = body.get("type", "reward")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise ValidationFailed.field("type", "must be a non-empty string of at most 64")
    value = body.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value)):
        raise ValidationFailed.field("value", "must be a finite number")
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not key or len(key) > 128):
        raise ValidationFailed.field("idempotency_key", "must be a non-empty string")
    return RewardInput(event_id, kind, None if value is None else float(value), key)


def mapped_value(rule: Mapping[str, Any], reward: RewardInput) -> float:
    """The reward's value under the experiment's rule (a fixed value, or `"value"`)."""
    events = rule["events"]
    if reward.type not in events:
        raise ValidationFailed.field(
            "type", f"unknown event type {reward.type!r}; this experiment rewards "
            f"{', '.join(sorted(events))}")
    spec = events[reward.type]
    if spec == "value":
        if reward.value is None:
            raise ValidationFailed.field("value", f"required for event type {reward.type!r}")
        return reward.value
    return float(spec)


def aggregate(aggregation: str, current: float | None, value: float) -> float:
    """The decision's reward after one more in-window event."""
    if current is None:
        return value
    if aggregation == "sum":
        return current + value
    if aggregation == "max":
        return max(current, value)
    return current  # earliest: the first value received stays


def find_for_team(session: Session, team_id: int, event_id: str,
                  experiment_id: int | None = None,
                  key_id: str | None = None) -> tuple[Decision, Experiment]:
    """The team's decision logged with `event_id`, and its experiment.

    Through the keys: (team's experiments x event id) probes their primary key, then one
    partition of decisions, however old the decision. Only the decision's scalar columns
    are loaded (not its context, actions and pmf: a reward never needs them). `key_id`:
    the caller was authenticated from a cache, and the decision is found only while that
    key is unrevoked (keys.KeyCache).

    Raises:
        NotFound, Conflict (the id is used by several experiments), Unauthorized.
    """
    query = (sa.select(Decision, Experiment)
             .options(load_only(*_SCALAR_COLUMNS))
             .join(DecisionKey, decision_of_key())
             .join(Experiment, Experiment.id == DecisionKey.experiment_id)
             .where(Experiment.team_id == team_id, DecisionKey.event_id == event_id))
    if experiment_id is not None:
        query = query.where(DecisionKey.experiment_id == experiment_id)
    if key_id is not None:
        query = query.where(keys.active_key_guard()).params(auth_key_id=key_id)
    rows = session.execute(query.limit(2)).all()
    if not rows:
        if key_id is not None and not keys.is_active(session, key_id):
            raise Unauthorized("invalid or revoked API key")
        raise NotFound(f"unknown event_id {event_id!r}: no decision was logged with it")
    if len(rows) > 1:
        raise Conflict(f"event_id {event_id!r} is used by several experiments; "
                       "send the reward to the experiment's batch endpoint")
    return rows[0][0], rows[0][1]


_SCALAR_COLUMNS = [Decision.id, Decision.experiment_id, Decision.event_id, Decision.arm,
                   Decision.deferred, Decision.activated_at, Decision.closes_at,
                   Decision.reward, Decision.reward_count, Decision.learned_version,
                   Decision.created_at]


def store(session: Session, decision: Decision, experiment: Experiment,
          reward: RewardInput) -> str:
    """Insert the event and update the decision; "accepted", "late" or "duplicate".

    With an idempotency key, `INSERT INTO reward_keys ... ON CONFLICT (experiment_id,
    idempotency_key) DO NOTHING RETURNING reward_event_id` decides "duplicate" in the
    step that stores the event (one statement on PostgreSQL, see `_insert_statements`),
    so neither a lookup first nor a savepoint (to keep the rest of a batch after a
    duplicate) is needed, and two concurrent retries cannot both count. The caller commits.
    """
    value = mapped_value(experiment.config["reward"], reward)
    now = clock.now()
    late = decision.closes_at is not None and now > decision.closes_at
    inserted = _insert(session.connection(), reward.idempotency_key is not None, {
        "experiment_id": experiment.id, "decision_id": decision.id,
        "event_id": decision.event_id, "type": reward.type, "value": value,
        "raw_value": reward.value, "idempotency_key": reward.idempotency_key, "late": late,
        "received_at": now})
    if inserted is None:
        return "duplicate"
    if not late and not _update_decision(session, decision, experiment, value):
        # The learner already took this decision (its window closed while this request
        # was in flight): the reward is late after all, and must say so.
        session.execute(sa.update(RewardEvent)
                        .where(RewardEvent.id == inserted, RewardEvent.received_at == now)
                        .values(late=True).execution_options(synchronize_session=False))
        late = True
    return "late" if late else "accepted"


def _insert(connection: sa.Connection, keyed: bool, params: dict[str, Any]) -> int | None:
    """The new reward event's id; None if its idempotency key was already used."""
    if not keyed:
        return connection.execute(_UNKEYED, params).scalar_one()
    found = None
    for statement in _insert_statements(connection.dialect.name):
        found = connection.execute(statement, {**params, "reward_event_id": found}).scalar()
        if found is None:
            return None
    return found


_UNKEYED = sa.insert(RewardEvent).returning(RewardEvent.id)


@functools.cache
def _insert_statements(dialect: str) -> tuple[sa.Executable, ...]:
    """Claim the key (the new event's id with it), then insert the event with that id,
    each binding the previous one's result as `reward_event_id`: one statement (a
    data-modifying CTE) on PostgreSQL, two of the caller's transaction on SQLite."""
    table = cast(sa.Table, RewardEvent.__table__)
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    key = (insert(RewardKey).from_select(
        ["experiment_id", "idempotency_key", "reward_event_id", "received_at"],
        sa.select(sa.bindparam("experiment_id", type_=sa.Integer),
                  sa.bindparam("idempotency_key", type_=sa.String), NextRewardEventId(),
                  sa.bindparam("received_at", type_=sa.Double))
        .where(sa.true()))  # SQLite parses INSERT ... SELECT ... ON CONFLICT only so
        .on_conflict_do_nothing(index_elements=["experiment_id", "idempotency_key"])
        .returning(RewardKey.reward_event_id))
    columns = [c.name for c in table.columns if c.name != "id"]
    values = [sa.bindparam(name, type_=table.c[name].type) for name in columns]
    if dialect == "postgresql":
        claimed = key.cte("claimed")
        return (insert(table).from_select(
            ["id", *columns], sa.select(claimed.c.reward_event_id, *values))
            .returning(table.c.id),)
    row = sa.insert(table).values(
        id=sa.bindparam("reward_event_id", type_=table.c.id.type),
        **dict(zip(columns, values, strict=True))).returning(table.c.id)
    return key, row


def _update_decision(session: Session, decision: Decision, experiment: Experiment,
                     value: float) -> bool:
    """Fold `value` into the decision's reward unless the learner already learned it."""
    aggregation = experiment.config["reward"]["aggregation"]
    column = Decision.reward
    if aggregation == "sum":
        new = sa.func.coalesce(column, 0.0) + value
    elif aggregation == "max":
        new = sa.case((column.is_(None), value), (column < value, value), else_=column)
    else:
        new = sa.func.coalesce(column, value)
    # One UPDATE computes the aggregate in the database, so concurrent rewards compose.
    updated = cast(sa.CursorResult[Any], session.execute(
        sa.update(Decision).where(Decision.id == decision.id,
                                  Decision.created_at == decision.created_at,
                                  Decision.learned_version.is_(None))
        .values(reward=new, reward_count=Decision.reward_count + 1)
        .execution_options(synchronize_session=False)))
    return updated.rowcount == 1


def record(session: Session, team_id: int, reward: RewardInput,
           experiment_id: int | None = None, key_id: str | None = None) -> str:
    """Record one reward durably (commits). `key_id`: see `find_for_team`."""
    decision, experiment = find_for_team(session, team_id, reward.event_id, experiment_id,
                                         key_id)
    outcome = store(session, decision, experiment, reward)
    session.commit()
    return outcome


def record_batch(session: Session, experiment: Experiment, items: Any,
                 max_items: int) -> dict[str, Any]:
    """Record up to `max_items` rewards; bad items are reported by index, the rest kept."""
    if not isinstance(items, list) or not items or len(items) > max_items:
        raise ValidationFailed.field("rewards", f"must be a list of 1 to {max_items} rewards")
    counts = {"accepted": 0, "duplicates": 0, "late": 0}
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            reward = parse_reward(item)
            decision, _ = find_for_team(session, experiment.team_id, reward.event_id,
                                        experiment.id)
            outcome = store(session, decision, experiment, reward)
        except (ValidationFailed, NotFound, Conflict) as exc:
            rejected.append({"index": index, "error": {"code": exc.code,
                                                       "message": exc.message}})
            continue
        if outcome == "duplicate":
            counts["duplicates"] += 1
        else:
            counts["accepted"] += 1
            counts["late"] += outcome == "late"
    session.commit()
    return {**counts, "rejected": rejected}


def activate(session: Session, team_id: int, event_id: str) -> Decision:
    """Activate a deferred decision: its reward window starts now (idempotent)."""
    decision, experiment = find_for_team(session, team_id, event_id)
    if decision.activated_at is None:
        now = clock.now()
        decision.activated_at = now
        decision.closes_at = now + experiment.config["reward"]["window_seconds"]
        session.commit()
    return decision
