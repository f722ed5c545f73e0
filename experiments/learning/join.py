"""Reward join: which closed decisions the learner trains on, and with which reward.

A decision's reward is decided when its window closes: the running aggregate that
``experiments.rewards`` kept in ``decisions.reward`` (only in-window events update it), or
the experiment's ``reward.default`` when no event came. Deferred decisions that were never
activated have no ``closes_at`` and are never learned from.

``learned_version`` records each decision's fate, written in the same transaction as the
snapshot that includes it: the snapshot's version when learned, ``SKIPPED`` (0) when it
closed but is not to be learned from (paused, or not encodable). NULL means "not yet".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.models import Decision

SKIPPED = 0
MARK_CHUNK = 500  # ids per UPDATE ... IN (...): well under every backend's parameter limit


class QueueChanged(RuntimeError):
    """A decision to be marked was marked or erased meanwhile: abort the snapshot."""


@dataclass(frozen=True)
class Cursor:
    """Position in the queue (closes_at, id): the last decision fetched."""

    closes_at: float
    decision_id: int


@dataclass(frozen=True)
class ClosedDecision:
    """A decision whose window has closed, with its joined reward."""

    decision_id: int
    closes_at: float
    created_at: float
    arm: str
    phase: str
    context: dict[str, Any]
    actions: Sequence[tuple[str, Mapping[str, Any]]]  # shared between decisions: read only
    chosen_index: int
    propensity: float
    reward: float
    aggregate: float | None  # decisions.reward as read: None when no reward came

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.closes_at, self.decision_id)


def learnable(phase: str, arm: str) -> bool:
    """Online decisions of every arm (their logged propensity makes them valid off-policy
    data), the champion's decisions in apprentice mode, never paused ones nor those of
    logging mode (Personalizer's LoggingOnly)."""
    if phase in ("paused", "logging"):
        return False
    return phase != "apprentice" or arm == "champion"


def joined_reward(aggregate: float | None, default: float) -> float:
    """The decision's reward: the in-window aggregate, or the default when none came."""
    return default if aggregate is None else float(aggregate)


def fetch_closed(session: Session, experiment_id: int, *, cutoff: float,
                 after: Cursor | None, limit: int, default: float) -> list[ClosedDecision]:
    """Unlearned decisions with ``closes_at <= cutoff``, in (closes_at, id) order."""
    # The JSON columns are read as text and decoded here: orjson takes a fifth of the
    # standard library's time, and the actions of a catalog experiment are the same text
    # in every row, decoded once into one shared object (whose VW lines the learner then
    # encodes once: bandits.features.ActionLines). jsonb's text is what psycopg would
    # have decoded, so the objects are the same either way.
    query = sa.select(
        Decision.id, Decision.closes_at, Decision.created_at, Decision.arm, Decision.phase,
        sa.cast(Decision.context, sa.Text).label("context"),
        sa.cast(Decision.actions, sa.Text).label("actions"), Decision.chosen_index,
        Decision.propensity, Decision.reward,
    ).where(Decision.experiment_id == experiment_id, Decision.learned_version.is_(None),
            Decision.closes_at <= cutoff)
    if after is not None:
        query = query.where(sa.or_(
            Decision.closes_at > after.closes_at,
            sa.and_(Decision.closes_at == after.closes_at, Decision.id > after.decision_id)))
    rows = session.execute(query.order_by(Decision.closes_at, Decision.id).limit(limit))
    return [_closed(row, default) for row in rows]


def _closed(row: Any, default: float) -> ClosedDecision:
    return ClosedDecision(
        decision_id=row.id, closes_at=row.closes_at, created_at=row.created_at, arm=row.arm,
        phase=row.phase, context=_json(row.context), actions=_actions(row.actions),
        chosen_index=row.chosen_index, propensity=min(float(row.propensity), 1.0),
        reward=joined_reward(row.reward, default), aggregate=row.reward)


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what only the standard library writes (NaN, a lone
        return json.loads(text)     # surrogate), e.g. in a log imported by `tailor import`


@functools.lru_cache(maxsize=256)
def _actions(text: str) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    return tuple((a["id"], a.get("features") or {}) for a in _json(text))


@dataclass(frozen=True)
class Created:
    """The span of ``created_at`` of a set of decisions (both ends included).

    ``decisions`` is partitioned by ``created_at`` on PostgreSQL: a statement that names
    decisions by id alone probes the id index of every partition (one per day, for as
    long as decisions are kept); bounded by this span it reads only the partitions of
    these days.
    """

    first: float
    last: float

    def including(self, created_at: float) -> Created:
        return Created(min(self.first, created_at), max(self.last, created_at))

    def clause(self) -> sa.ColumnElement[bool]:
        return Decision.created_at.between(self.first, self.last)


def _by_id(ids: Sequence[int], created: Created | None) -> sa.ColumnElement[bool]:
    where = Decision.id.in_(ids)
    return where if created is None else sa.and_(where, created.clause())


def mark(session: Session, decision_ids: Sequence[int], version: int,
         created: Created | None = None) -> None:
    """Set ``learned_version`` on decisions that have none (the caller commits).
    ``created``: their span of ``created_at``, when known (see ``Created``).

    Raises:
        QueueChanged: if any of them is already marked (or was erased), so a snapshot
            never counts a decision twice.
    """
    for start in range(0, len(decision_ids), MARK_CHUNK):
        chunk = list(decision_ids[start:start + MARK_CHUNK])
        result = cast(sa.CursorResult[Any], session.execute(
            mark_statement(chunk, version, created)))
        if result.rowcount != len(chunk):
            raise QueueChanged(f"{len(chunk) - result.rowcount} decision(s) were learned "
                               "or erased meanwhile")


def mark_statement(decision_ids: Sequence[int], version: int,
                   created: Created | None = None) -> sa.Update:
    """The UPDATE of ``mark`` for one chunk of ids."""
    return (sa.update(Decision).where(_by_id(decision_ids, created),
                                      Decision.learned_version.is_(None))
            .values(learned_version=version).execution_options(synchronize_session=False))


def verify_rewards(session: Session, learned: Mapping[int, float | None],
                   created: Created | None = None) -> None:
    """Check, inside the snapshot transaction and after ``mark``, that no reward reached
    these decisions after the learner read them (a reward whose commit was delayed past
    the grace period). ``mark`` locked the rows (PostgreSQL) or took the write lock
    (SQLite), so what is read here is what the snapshot commits with.

    Raises:
        QueueChanged: a decision's reward changed; the snapshot must be learned again.
    """
    ids = list(learned)
    for start in range(0, len(ids), MARK_CHUNK):
        rows = session.execute(sa.select(Decision.id, Decision.reward).where(
            _by_id(ids[start:start + MARK_CHUNK], created)))
        changed = [row.id for row in rows if row.reward != learned[row.id]]
        if changed:
            raise QueueChanged(f"{len(changed)} reward(s) arrived while being learned")


@dataclass(frozen=True)
class Backlog:
    """Closed decisions not yet learned (or skipped), and in-window ones."""

    pending: int
    oldest_closes_at: float | None
    in_window: int


def backlog(session: Session, experiment_id: int, now: float) -> Backlog:
    """Counts from the partial index on unlearned decisions (no scan of the whole log)."""
    unlearned = sa.and_(Decision.experiment_id == experiment_id,
                        Decision.learned_version.is_(None))
    pending, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(Decision.closes_at))
        .where(unlearned, Decision.closes_at <= now)).one()
    in_window = session.scalar(sa.select(sa.func.count()).where(
        unlearned, Decision.closes_at > now))
    return Backlog(int(pending), oldest, int(in_window or 0))
