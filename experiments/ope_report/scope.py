"""Streaming the decisions an OPE report reads (its `experiments.final_decisions.Scope`)
in chunks of arrays.

Rows are streamed in time order (``created_at``, then id) with ``yield_per``: a
server-side cursor on PostgreSQL, incremental fetches on SQLite, so memory holds one chunk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from experiments import value_bounds
from experiments.final_decisions import Scope
from experiments.models import CandidatePmf, Decision

CHUNK_SIZE = 20_000


@dataclass(frozen=True, eq=False)
class Chunk:
    """Consecutive decisions in time order, as arrays padded to K actions.

    Attributes:
        event_ids: ``n`` event ids.
        arms: ``n`` arms.
        contexts: ``n`` contexts (shared, read-only).
        context_keys: ``n`` JSON texts of the contexts (equal text, equal context).
        actions: ``n`` offered action lists ``[{"id", "features"}]`` (shared, read-only).
        positions: ``n`` maps action id -> column (shared, read-only).
        signatures: ``n`` JSON texts of the action lists (equal text, equal list).
        logged_pmfs: ``n`` logged pmfs (entries None where unknown).
        chosen: ``(n,)`` chosen column.
        propensity: ``(n,)`` logged propensity of the chosen action.
        rewards: ``(n,)`` final rewards.
        rewarded: ``(n,)`` True where a reward came (False: the default reward).
        mask: ``(n, K)`` True where an action was offered.
        candidate_pmfs: Per ``pmf:`` candidate id, ``n`` supplied ``{action: p}`` (or None).
        unit_ids: ``n`` unit ids (an entry None: that decision is a unit of its own; the
            whole list None: every decision is).
        created_at: ``(n,)`` epoch seconds each decision was logged.
        bounded: Some reward lay beyond ``±VALUE_BOUND`` and is counted at the bound
            (``experiments.value_bounds``).
    """

    event_ids: list[str]
    arms: list[str]
    contexts: list[dict[str, Any]]
    context_keys: list[str]
    actions: list[list[dict[str, Any]]]
    positions: list[dict[str, int]]
    signatures: list[str]
    logged_pmfs: list[list[float | None]]
    chosen: np.ndarray
    propensity: np.ndarray
    rewards: np.ndarray
    rewarded: np.ndarray
    mask: np.ndarray
    candidate_pmfs: dict[int, list[dict[str, float] | None]]
    unit_ids: list[str | None] | None = None
    created_at: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bounded: bool = False

    @property
    def n(self) -> int:
        return len(self.event_ids)

    def take(self, rows: np.ndarray) -> Chunk:
        """The chunk's decisions at these row indices (same K columns)."""
        picked = rows.tolist()

        def pick(values: list[Any]) -> list[Any]:
            return [values[i] for i in picked]

        return Chunk(
            event_ids=pick(self.event_ids), arms=pick(self.arms),
            contexts=pick(self.contexts), context_keys=pick(self.context_keys),
            actions=pick(self.actions), positions=pick(self.positions),
            signatures=pick(self.signatures), logged_pmfs=pick(self.logged_pmfs),
            chosen=self.chosen[rows], propensity=self.propensity[rows],
            rewards=self.rewards[rows], rewarded=self.rewarded[rows], mask=self.mask[rows],
            candidate_pmfs={cid: pick(v) for cid, v in self.candidate_pmfs.items()},
            unit_ids=None if self.unit_ids is None else pick(self.unit_ids),
            created_at=None if self.created_at is None else self.created_at[rows],
            bounded=self.bounded)

    @cached_property
    def fold_keys(self) -> list[str]:
        """What cross-fitting hashes: the unit, so that all of a unit's decisions share a
        fold (the event id for a decision without a unit)."""
        if self.unit_ids is None:
            return self.event_ids
        return [e if u is None else f"unit:{u}"
                for e, u in zip(self.event_ids, self.unit_ids, strict=True)]

    @cached_property
    def logged_matrix(self) -> np.ndarray:
        """``(n, K)`` logged pmfs, NaN where unknown (0 in padding)."""
        out = np.zeros(self.mask.shape)
        groups: dict[int, list[int]] = {}  # decoded pmfs are shared: convert each once
        for i, pmf in enumerate(self.logged_pmfs):
            groups.setdefault(id(pmf), []).append(i)
        for members in groups.values():
            pmf = self.logged_pmfs[members[0]]
            out[members, : len(pmf)] = [math.nan if p is None else p for p in pmf]
        return out


class _Decoder:
    """JSON of contexts, actions and pmfs, decoded once per distinct text: logs repeat the
    same action list (and, for uniform logging, the same pmf, often the same context)."""

    LIMIT = 50_000

    def __init__(self) -> None:
        self.actions: dict[str, tuple[list[dict[str, Any]], dict[str, int]]] = {}
        self.pmfs: dict[str, list[float | None]] = {}
        self.contexts: dict[str, dict[str, Any]] = {}

    def action_list(self, text: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
        found = self.actions.get(text)
        if found is None:
            actions = json.loads(text)
            found = (actions, {a["id"]: j for j, a in enumerate(actions)})
            self._put(self.actions, text, found)
        return found

    def context(self, text: str) -> dict[str, Any]:
        found = self.contexts.get(text)
        if found is None:
            found = json.loads(text)
            self._put(self.contexts, text, found)
        return found

    def pmf(self, text: str) -> list[float | None]:
        found = self.pmfs.get(text)
        if found is None:
            found = json.loads(text)
            self._put(self.pmfs, text, found)
        return found

    def _put(self, cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= self.LIMIT:
            cache.clear()
        cache[key] = value


def chunks(session: Session, scope: Scope, candidate_ids: Sequence[int] = (),
           chunk_size: int = CHUNK_SIZE) -> Iterator[Chunk]:
    """Stream the scope's decisions as :class:`Chunk` s (with supplied candidate pmfs)."""
    columns = [Decision.event_id, Decision.arm,
               sa.cast(Decision.context, sa.Text).label("context_text"),
               sa.cast(Decision.actions, sa.Text).label("actions_text"),
               sa.cast(Decision.pmf, sa.Text).label("pmf_text"), Decision.chosen_index,
               Decision.propensity, scope.reward().label("final_reward"),
               Decision.reward.is_not(None).label("rewarded"), Decision.unit_id,
               Decision.created_at]
    query = sa.select(*columns)
    for index, candidate_id in enumerate(candidate_ids):
        alias = aliased(CandidatePmf, name=f"cp{index}")
        query = query.outerjoin(alias, sa.and_(alias.candidate_id == candidate_id,
                                               alias.event_id == Decision.event_id))
        query = query.add_columns(alias.pmf.label(f"pmf{index}"))
    query = query.where(*scope.conditions()).order_by(Decision.created_at, Decision.id)
    # Core rows (not ORM): a report reads millions, and the ORM layer costs per row.
    result = session.connection().execute(query.execution_options(yield_per=chunk_size))
    decoder = _Decoder()
    try:
        for rows in result.partitions():
            yield _chunk(rows, candidate_ids, decoder)
    finally:  # a reader that stops early (a candidate that cannot be evaluated: 422)
        result.close()  # must not leave PostgreSQL's server-side cursor open


def _chunk(rows: Sequence[Any], candidate_ids: Sequence[int], decoder: _Decoder) -> Chunk:
    (event_ids, arms, context_texts, action_texts, pmf_texts, chosen, propensity, rewards,
     rewarded, unit_ids, created_at, *supplied) = zip(*rows, strict=True)
    n = len(rows)
    final_rewards = np.array(rewards, dtype=float)
    decoded = [decoder.action_list(text) for text in action_texts]
    lengths = np.fromiter((len(actions) for actions, _ in decoded), dtype=np.intp, count=n)
    mask = np.arange(int(lengths.max())) < lengths[:, None]
    return Chunk(
        event_ids=list(event_ids), arms=list(arms),
        contexts=[decoder.context(text) for text in context_texts],
        context_keys=list(context_texts), actions=[a for a, _ in decoded],
        positions=[p for _, p in decoded], signatures=list(action_texts),
        logged_pmfs=[decoder.pmf(text) for text in pmf_texts],
        chosen=np.array(chosen, dtype=np.intp),
        propensity=np.minimum(np.array(propensity, dtype=float), 1.0),
        rewards=value_bounds.bounded_array(final_rewards),
        rewarded=np.array(rewarded, dtype=bool),
        mask=mask,
        candidate_pmfs={cid: list(column) for cid, column in zip(candidate_ids, supplied,
                                                                 strict=True)},
        unit_ids=list(unit_ids), created_at=np.array(created_at, dtype=float),
        bounded=value_bounds.beyond(final_rewards),
    )

def missing_candidate_pmfs(session: Session, scope: Scope, candidate_id: int,
                           limit: int = 10) -> tuple[int, list[str]]:
    """How many decisions of the scope a supplied candidate has no pmf for, and the first
    few of their event ids."""
    alias = aliased(CandidatePmf)
    join = sa.and_(alias.candidate_id == candidate_id, alias.event_id == Decision.event_id)
    base = sa.select(Decision.event_id).outerjoin(alias, join).where(
        *scope.conditions(), alias.event_id.is_(None))
    total = session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    first = list(session.scalars(base.order_by(Decision.created_at, Decision.id).limit(limit)))
    return int(total or 0), first
