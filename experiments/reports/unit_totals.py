"""Unit-level totals without time buckets on SQLite: one GROUP BY per unit, then per group.

The segment breakdown needs no looks, only each group's totals ``n, Σx, Σx², Σy, Σy², Σxy``
over the units whose *first* decision falls in it. :mod:`experiments.reports.units` gets
them from window functions over every decision, which on SQLite costs a window pass, a
sort of every decision by group, and a JSON extraction per decision (the segment field).
Hand-written here for speed, because SQLite streams a ``GROUP BY unit_id`` straight off
the unit-ordered covering index (``ix_decisions_unit_report``, no sort), finds each unit's
first decision with one index probe, and reads the context (JSON) of that decision only:
100k extractions instead of 1M at 1M decisions over 100k units. PostgreSQL keeps the
window functions (it hashes and sorts in parallel, and a probe per unit would visit every
partition).

The numbers are those of :func:`experiments.reports.units.unit_cells` (the same sums
taken in another order): the first decision is the earliest activation, ties broken by
id, as there; a decision without a unit id is a unit of its own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from experiments.models import Decision
from experiments.reports.sql import MISSING, OTHER, Scope, json_text


def _flags(scope: Scope) -> tuple[Any, Any, Any]:
    """Per decision: reward, open window (1/0), online phase (1/0)."""
    return (scope.reward(), sa.case((Decision.closes_at > scope.now, 1), else_=0),
            sa.case((Decision.phase == "online", 1), else_=0))


def _per_unit(scope: Scope) -> sa.Subquery:
    """Per unit id: decisions ``x``, reward sum ``y``, decision-level moments, flags, and
    the id of the unit's first decision."""
    r, pend, onl = _flags(scope)
    rows = sa.select(Decision.unit_id.label("u"), r.label("r"), pend.label("pend"),
                     onl.label("onl")).where(
        *scope.conditions(), Decision.unit_id.is_not(None)).subquery()
    units = (sa.select(rows.c.u, sa.func.count().label("x"), sa.func.sum(rows.c.r).label("y"),
                       sa.func.sum(rows.c.r * rows.c.r).label("q"),
                       sa.func.min(rows.c.r).label("lo"), sa.func.max(rows.c.r).label("hi"),
                       sa.func.sum(rows.c.pend).label("pend"),
                       sa.func.sum(rows.c.onl).label("onl"))
             .group_by(rows.c.u).subquery())
    first = aliased(Decision)
    first_id = (sa.select(first.id).where(*scope.conditions(first), first.unit_id == units.c.u)
                .order_by(first.activated_at, first.id).limit(1).scalar_subquery())
    return sa.select(*units.c, first_id.label("fid")).subquery()


def _labelled(dialect_name: str, context: Any, segment: tuple[tuple[str, ...], list[str]]
              ) -> sa.ColumnElement[str]:
    path, top = segment
    value = json_text(dialect_name, context, path)
    return sa.case((value.is_(None), MISSING), (value.in_(top), value), else_=OTHER)


def unit_totals(session: Session, scope: Scope,
                segment: tuple[tuple[str, ...], list[str]] | None) -> sa.Select[Any]:
    """Per (first arm[, first segment]): ``n, Σx, Σx², pending, online, without unit`` then
    ``Σy, Σy², Σxy, Σr², min r, max r`` of the reward: the layout of
    :func:`experiments.reports.units.unit_cells`' rows."""
    name = session.get_bind().dialect.name
    units = _per_unit(scope)
    first = aliased(Decision)
    with_unit = (sa.select(first.arm.label("arm"), units.c.x, units.c.y, units.c.q,
                           units.c.lo, units.c.hi, units.c.pend, units.c.onl,
                           sa.literal(0).label("nounit"), first.context.label("ctx"))
                 .join(first, sa.and_(first.id == units.c.fid,
                                      first.experiment_id == scope.experiment_id)))
    r, pend, onl = _flags(scope)
    without = sa.select(Decision.arm, sa.literal(1), r, r * r, r, r, pend, onl,
                        sa.literal(1), Decision.context).where(
        *scope.conditions(), Decision.unit_id.is_(None))
    rows = sa.union_all(with_unit, without).subquery()
    keys = [rows.c.arm] + ([_labelled(name, rows.c.ctx, segment).label("seg")]
                           if segment else [])
    c = rows.c
    return (sa.select(*keys, sa.func.count(), sa.func.sum(c.x), sa.func.sum(c.x * c.x),
                      sa.func.sum(c.pend), sa.func.sum(c.onl), sa.func.sum(c.nounit),
                      sa.func.sum(c.y), sa.func.sum(c.y * c.y), sa.func.sum(c.x * c.y),
                      sa.func.sum(c.q), sa.func.min(c.lo), sa.func.max(c.hi))
            .group_by(*keys))
