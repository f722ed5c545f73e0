"""What the drift report reads: a bounded sample of contexts and per-unit sums per window.

Both count the decisions the A/B report counts (``experiments.reports.sql.Scope``:
activated, served live) logged in ``[since, until)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.abstats import RatioStats
from experiments.models import Decision
from experiments.reports.sql import Scope


@dataclass(frozen=True, slots=True)
class Window:
    """Decisions logged in ``[since, until)`` (epoch seconds)."""

    since: float
    until: float

    def conditions(self, scope: Scope) -> list[sa.ColumnElement[bool]]:
        return [*scope.conditions(), Decision.created_at >= self.since,
                Decision.created_at < self.until]


def count(session: Session, scope: Scope, window: Window) -> int:
    """Decisions of the window."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(Decision)
                              .where(*window.conditions(scope))) or 0)


def sample_contexts(session: Session, scope: Scope, window: Window, total: int, limit: int
                    ) -> list[Any]:
    """At most ``limit`` contexts of the window, evenly spread over it: every ``k``-th
    decision in time order (``k = ceil(total / limit)``), all when ``total <= limit``.

    The decisions are numbered by their keys only, and the contexts (wide JSON) read for
    the chosen ones, so that the numbering never sorts the contexts of the whole window.
    """
    where = window.conditions(scope)
    if total <= limit:
        return list(session.scalars(sa.select(Decision.context).where(*where)))
    stride = -(-total // limit)
    numbered = sa.select(Decision.id, Decision.created_at, sa.func.row_number().over(
        order_by=[Decision.created_at, Decision.id]).label("i")).where(*where).subquery()
    chosen = (sa.select(numbered.c.id, numbered.c.created_at)
              .where((numbered.c.i - 1) % stride == 0).limit(limit).subquery())
    rows = sa.select(Decision.context).join(chosen, sa.and_(
        Decision.id == chosen.c.id, Decision.created_at == chosen.c.created_at))
    return list(session.scalars(rows))


def unit_sums(session: Session, scope: Scope, window: Window, value: Any,
              only: Sequence[sa.ColumnElement[bool]] = ()) -> RatioStats:
    """Per-unit decisions ``x`` and sums ``y`` of ``value`` over the window's decisions
    (those meeting ``only`` too), as :class:`RatioStats`; a decision without a unit id is
    a unit of its own."""
    where = [*window.conditions(scope), *only]
    alone = sa.case((Decision.unit_id.is_(None), Decision.id), else_=None)
    per_unit = (sa.select(sa.func.count().label("x"), sa.func.sum(value).label("y"))
                .where(*where).group_by(Decision.unit_id, alone).subquery())
    x, y = per_unit.c.x, per_unit.c.y
    row = session.execute(sa.select(sa.func.count(), sa.func.sum(x), sa.func.sum(x * x),
                                    sa.func.sum(y), sa.func.sum(y * y),
                                    sa.func.sum(x * y))).one()
    return RatioStats.from_aggregates(*row)
