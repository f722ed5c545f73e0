"""Rewards: map typed events by the experiment's rule, store them once, join them to decisions.

A reward inside its decision's window updates the decision's running aggregate in the same
transaction (`sum`, `max`, or `earliest` = the first value received), so the learner and
the reports read one number per decision. A reward after the window closed is stored,
flagged late, and changes nothing.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from experiments import clock, keys
from experiments.direct import Direct, chained
from experiments.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from experiments.keyed import claim_then_insert
from experiments.models import (
    EVENT_ID_LENGTH,
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
class RewardCommand:
    event_id: str
    type: str
    value: float | None
    idempotency_key: str | None


def parse_reward(body: Any, event_id: str | None = None) -> RewardCommand:
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    unknown = sorted(set(body) - REWARD_FIELDS)
    if unknown:
        raise ValidationFailed.field(unknown[0], "unknown field")
    named = body.get("event_id")
    if event_id is not None and named is not None and named != event_id:
        # One reward, two decisions named: storing it on either would be a guess.
        raise ValidationFailed.field(
            "event_id", f"names decision {named!r}, but the path names {event_id!r}; "
            "send the reward to /v1/events/<its event_id>/rewards")
    event_id = event_id if event_id is not None else named
    if not isinstance(event_id, str) or not event_id or len(event_id) > EVENT_ID_LENGTH:
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
    return RewardCommand(event_id, kind, None if value is None else float(value), key)


def mapped_value(rule: Mapping[str, Any], reward: RewardCommand) -> float:
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


def aggregate(aggregation: str, values: list[float]) -> float:
    """A decision's reward from its in-window events, in arrival order: the six reward
    functions of Microsoft's learning loop (VowpalWabbit/reinforcement_learning's joiner)."""
    if aggregation == "sum":
        return float(sum(values))
    if aggregation == "max":
        return max(values)
    if aggregation == "min":
        return min(values)
    if aggregation == "average":
        return sum(values) / len(values)
    if aggregation == "median":
        return float(statistics.median(values))
    return values[0]  # earliest: the first value received stays


# ---- the write path: prebuilt statements, no ORM objects ----------------------------

class Executor(Protocol):
    """Runs a prebuilt statement in the caller's transaction: a session's connection
    (`SessionExecutor`) or a raw one of the hot path (`experiments.direct.Transaction`)."""

    dialect: str

    def rows(self, statement: sa.Executable,
             values: Mapping[str, Any]) -> list[tuple[Any, ...]]: ...

    def first(self, statement: sa.Executable,
              values: Mapping[str, Any]) -> tuple[Any, ...] | None: ...


class SessionExecutor:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def rows(self, statement: sa.Executable,
             values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.session.connection().execute(statement, values)]

    def first(self, statement: sa.Executable,
              values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        row = self.session.connection().execute(statement, values).first()
        return None if row is None else tuple(row)


@dataclass(frozen=True)
class Target:
    """What storing a reward needs of its decision and experiment."""

    decision_id: int
    decision_created_at: float
    event_id: str
    activated_at: float | None
    closes_at: float | None
    experiment_id: int
    rule: Mapping[str, Any]  # the experiment's `reward` configuration


def find_target(executor: Executor, team_id: int, event_id: str,
                experiment_id: int | None = None, key_id: str | None = None) -> Target:
    """The team's decision logged with `event_id`, as a `Target`.

    Only the decision's scalar columns are read (not its context, actions and pmf: a
    reward never needs them). `key_id`: the caller was authenticated from a cache, and the
    decision is found only while that key is unrevoked (keys.KeyCache).

    Raises:
        NotFound, Conflict (the id is used by several experiments), Unauthorized.
    """
    rows = executor.rows(_find_statement(experiment_id is not None, executor.dialect), {
        "team_id": team_id, "event_id": event_id, "experiment_id": experiment_id,
        "auth_key_id": key_id})
    if not rows:
        if key_id is not None and executor.first(keys.ACTIVE_KEY, {"key_id": key_id}) is None:
            raise Unauthorized("invalid or revoked API key")
        raise NotFound(f"unknown event_id {event_id!r}: no decision was logged with it")
    if len(rows) > 1:
        raise Conflict(f"event_id {event_id!r} is used by several experiments; "
                       "send the reward to the experiment's batch endpoint")
    decision_id, created_at, found_event, activated_at, closes_at, experiment, rule = rows[0]
    rule = json.loads(rule) if isinstance(rule, str) else rule  # raw SQLite: text
    return Target(decision_id, created_at, found_event, activated_at, closes_at, experiment,
                  rule)


def _reward_rule(dialect: str) -> sa.ColumnElement[Any]:
    """The configuration's `reward` part, as JSON text (SQLite) or a value (PostgreSQL):
    the whole configuration, its catalog of actions included, was parsed on every
    reward just to read it. Literal paths: the hot path's raw statements bind values
    as they are (experiments.direct), without SQLAlchemy's JSON path processing."""
    if dialect == "postgresql":
        return Experiment.config.op("->")(sa.literal_column("'reward'"))
    return sa.func.json_extract(Experiment.config, sa.literal_column("'$.reward'"))


@functools.cache
def _find_statement(by_experiment: bool, dialect: str) -> sa.Select[Any]:
    # Through the keys: (team's experiments x event id) probes their primary key, then
    # one partition of decisions, however old the decision.
    query = (sa.select(Decision.id, Decision.created_at, Decision.event_id,
                       Decision.activated_at, Decision.closes_at, Experiment.id,
                       _reward_rule(dialect))
             .join(DecisionKey, decision_of_key())
             .join(Experiment, Experiment.id == DecisionKey.experiment_id)
             .where(Experiment.team_id == sa.bindparam("team_id"),
                    DecisionKey.event_id == sa.bindparam("event_id"),
                    keys.active_key_guard()))
    if by_experiment:
        query = query.where(DecisionKey.experiment_id == sa.bindparam("experiment_id"))
    return query.limit(2)




def store(executor: Executor, target: Target, reward: RewardCommand) -> str:
    """Insert the event and update the decision; "accepted", "late" or "duplicate".

    With an idempotency key, `INSERT INTO reward_keys ... ON CONFLICT (experiment_id,
    idempotency_key) DO NOTHING RETURNING reward_event_id` decides "duplicate" in the
    step that stores the event (one statement on PostgreSQL, see `_insert_statements`),
    so neither a lookup first nor a savepoint (to keep the rest of a batch after a
    duplicate) is needed, and two concurrent retries cannot both count. The caller commits.
    """
    value = mapped_value(target.rule, reward)
    now = clock.now()
    late = target.closes_at is not None and now > target.closes_at
    inserted = _insert(executor, reward.idempotency_key is not None, {
        "experiment_id": target.experiment_id, "decision_id": target.decision_id,
        "event_id": target.event_id, "type": reward.type, "value": value,
        "raw_value": reward.value, "idempotency_key": reward.idempotency_key, "late": late,
        "received_at": now})
    if inserted is None:
        return "duplicate"
    # One UPDATE computes the aggregate in the database, so concurrent rewards compose;
    # it changes nothing once the learner has learned the decision.
    if not late and not _fold(executor, target, value):
        # The learner already took this decision (its window closed while this request
        # was in flight): the reward is late after all, and must say so.
        executor.first(_MARK_LATE, {"reward_event_id": inserted, "event_received_at": now})
        late = True
    return "late" if late else "accepted"


def _fold(executor: Executor, target: Target, value: float) -> bool:
    """Fold the value into the decision's reward; False if the learner already took it.
    `median` needs every in-window value: the UPDATE that counts the event locks the
    decision row first, so the values read next include every committed one."""
    aggregation = target.rule["aggregation"]
    params = {"decision_id": target.decision_id,
              "decision_created_at": target.decision_created_at, "value": value}
    if executor.first(_UPDATE[aggregation], params) is None:
        return False
    if aggregation == "median":
        values = [row[0] for row in executor.rows(_IN_WINDOW_VALUES, params)]
        executor.first(_SET_REWARD, {**params, "value": aggregate("median", values)})
    return True


def store_one(executor: Executor, team_id: int, reward: RewardCommand,
              experiment_id: int | None = None, key_id: str | None = None) -> str:
    """Find the reward's decision and store it (the caller commits)."""
    return store(executor, find_target(executor, team_id, reward.event_id, experiment_id,
                                       key_id), reward)


def _insert(executor: Executor, keyed: bool, params: dict[str, Any]) -> int | None:
    """The new reward event's id; None if its idempotency key was already used."""
    if not keyed:
        row = executor.first(_UNKEYED, params)
        assert row is not None
        return row[0]
    row = chained(executor.first, _insert_statements(executor.dialect), params,
                  "reward_event_id")
    return None if row is None else row[0]


_UNKEYED = sa.insert(RewardEvent).values(
    {c.name: sa.bindparam(c.name, type_=c.type) for c in RewardEvent.__table__.columns
     if c.name != "id"}).returning(RewardEvent.id)


@functools.cache
def _insert_statements(dialect: str) -> tuple[sa.Executable, ...]:
    """Claim the key (the new event's id with it), then insert the event with that id,
    each binding the previous one's result as `reward_event_id`: one statement (a
    data-modifying CTE) on PostgreSQL, two of the caller's transaction on SQLite."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    key = (insert(RewardKey).from_select(
        ["experiment_id", "idempotency_key", "reward_event_id", "received_at"],
        sa.select(sa.bindparam("experiment_id", type_=sa.Integer),
                  sa.bindparam("idempotency_key", type_=sa.String), NextRewardEventId(),
                  sa.bindparam("received_at", type_=sa.Double))
        .where(sa.true()))  # SQLite parses INSERT ... SELECT ... ON CONFLICT only so
        .on_conflict_do_nothing(index_elements=["experiment_id", "idempotency_key"])
        .returning(RewardKey.reward_event_id))
    return claim_then_insert(dialect, key, cast(sa.Table, RewardEvent.__table__),
                             "reward_event_id")


def _update_statement(aggregation: str) -> sa.Executable:
    """Fold `:value` into the decision's reward unless the learner already learned it."""
    column, value = Decision.reward, sa.bindparam("value", type_=sa.Double)
    count = Decision.reward_count
    if aggregation == "sum":
        new: Any = sa.func.coalesce(column, 0.0) + value
    elif aggregation == "max":
        new = sa.case((column.is_(None), value), (column < value, value), else_=column)
    elif aggregation == "min":
        new = sa.case((column.is_(None), value), (column > value, value), else_=column)
    elif aggregation == "average":  # the running mean of the in-window values
        new = (sa.func.coalesce(column, 0.0) * count + value) / (count + 1)
    elif aggregation == "median":  # counted here, computed by `_fold` from the values
        new = column
    else:  # earliest: the first value received stays
        new = sa.func.coalesce(column, value)
    return (sa.update(Decision)
            .where(Decision.id == sa.bindparam("decision_id"),
                   Decision.created_at == sa.bindparam("decision_created_at"),
                   Decision.learned_version.is_(None))
            .values(reward=new, reward_count=Decision.reward_count + 1)
            .returning(Decision.id))


_UPDATE = {aggregation: _update_statement(aggregation)
           for aggregation in ("sum", "max", "earliest", "min", "average", "median")}
_IN_WINDOW_VALUES = sa.select(RewardEvent.value).where(
    RewardEvent.decision_id == sa.bindparam("decision_id"), RewardEvent.late.is_(False)
).order_by(RewardEvent.id)
_SET_REWARD = (sa.update(Decision)
               .where(Decision.id == sa.bindparam("decision_id"),
                      Decision.created_at == sa.bindparam("decision_created_at"))
               .values(reward=sa.bindparam("value", type_=sa.Double))
               .returning(Decision.id))
_MARK_LATE = (sa.update(RewardEvent)
              .where(RewardEvent.id == sa.bindparam("reward_event_id"),
                     RewardEvent.received_at == sa.bindparam("event_received_at"))
              .values(late=True).returning(RewardEvent.id))


def record(session: Session, team_id: int, reward: RewardCommand,
           experiment_id: int | None = None, key_id: str | None = None,
           direct: Direct | None = None) -> str:
    """Record one reward durably (commits). `key_id`: see `find_target`. With `direct`,
    in one transaction on the hot path's raw connection instead of the session's."""
    if direct is not None:
        return direct.run(lambda tx: store_one(tx, team_id, reward, experiment_id, key_id))
    outcome = store_one(SessionExecutor(session), team_id, reward, experiment_id, key_id)
    session.commit()
    return outcome


def batch_items(body: Any) -> Any:
    """The `rewards` of a batch body; any other field is refused (a misspelt option must
    not be ignored while the rewards are stored)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    for unknown in sorted(set(body) - {"rewards"}):
        raise ValidationFailed.field(unknown, "unknown field; the batch's only field is "
                                     "`rewards`")
    return body.get("rewards")


def record_batch(session: Session, experiment: Experiment, items: Any,
                 max_items: int) -> dict[str, Any]:
    """Record up to `max_items` rewards; bad items are reported by index, the rest kept."""
    if not isinstance(items, list) or not items or len(items) > max_items:
        raise ValidationFailed.field("rewards", f"must be a list of 1 to {max_items} rewards")
    counts = {"accepted": 0, "duplicates": 0, "late": 0}
    rejected: list[dict[str, Any]] = []
    executor = SessionExecutor(session)
    for index, item in enumerate(items):
        try:
            reward = parse_reward(item)
            outcome = store_one(executor, experiment.team_id, reward, experiment.id)
        except (ValidationFailed, NotFound, Conflict) as exc:
            rejected.append({"index": index, "error": _item_error(index, exc)})
            continue
        if outcome == "duplicate":
            counts["duplicates"] += 1
        else:
            counts["accepted"] += 1
            counts["late"] += outcome == "late"
    session.commit()
    return {**counts, "rejected": rejected}


def _item_error(index: int, exc: ValidationFailed | NotFound | Conflict) -> dict[str, Any]:
    """A batch item's error in the API's error shape, its details naming the field by its
    path in the batch (`rewards[3].type`); an event id that names no decision (or several)
    is the item's `event_id`'s fault."""
    prefix = f"rewards[{index}]"
    details = [{**d, "field": f"{prefix}.{d['field']}"} if "field" in d else d
               for d in exc.details]
    if not details and isinstance(exc, NotFound | Conflict):
        details = [{"field": f"{prefix}.event_id", "message": exc.message}]
    return {"code": exc.code, "message": exc.message, "details": details}


def activate(session: Session, team_id: int, event_id: str,
             experiment_id: int | None = None, *, commit: bool = True) -> float:
    """Activate a deferred decision: its reward window starts now (idempotent). Returns
    when it was activated (now, or the first activation). `commit=False`: the caller
    commits (and the time returned for a concurrent activation may be this one's)."""
    executor = SessionExecutor(session)
    target = find_target(executor, team_id, event_id, experiment_id)
    if target.activated_at is not None:
        return target.activated_at
    now = clock.now()
    # Only if still inactive: of two concurrent activations, the first one's time stays.
    done = executor.first(_ACTIVATE, {
        "decision_id": target.decision_id, "decision_created_at": target.decision_created_at,
        "now": now, "closes": now + target.rule["window_seconds"]})
    if not commit:
        return now
    session.commit()
    if done is not None:
        return now
    return cast(float, session.scalar(sa.select(Decision.activated_at).where(
        Decision.id == target.decision_id,
        Decision.created_at == target.decision_created_at)))


_ACTIVATE = (sa.update(Decision)
             .where(Decision.id == sa.bindparam("decision_id"),
                    Decision.created_at == sa.bindparam("decision_created_at"),
                    Decision.activated_at.is_(None))
             .values(activated_at=sa.bindparam("now", type_=sa.Double),
                     closes_at=sa.bindparam("closes", type_=sa.Double))
             .returning(Decision.id))
