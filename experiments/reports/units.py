"""Unit-level SQL aggregates: each unit's running sums first, then per-arm sums of them.

Tailor assigns arms per unit and units come back, so the report analyses units. Two
layers of SQL, no rows ever reach Python:

1. ``running``: window functions over each unit's decisions in time order give, per
   decision, the unit's running decision count ``x`` and metric sums ``y`` up to it, and
   the arm, segment and covariate of the unit's first decision. A decision without a unit
   id is a unit of its own (the partition key is ``(unit_id, id if unit_id IS NULL)``).
2. per (first arm, time bucket[, segment]): the *increments* of the unit-level sufficient
   statistics ``n, Σx, Σx², Σy, Σy², Σxy``. A decision with value ``s`` raises its unit's
   ``x`` from ``x - 1`` to ``x`` and ``y`` from ``y - s`` to ``y``, so it adds
   ``x² - (x - 1)² = 2x - 1`` to ``Σx²``, ``s (2y - s)`` to ``Σy²`` and ``y + s x - s`` to
   ``Σxy`` (and 1 to ``n`` when it is the unit's first). Increments telescope: summed over
   the buckets up to a look they are exactly the statistics of the units seen so far
   (cumulative curves, sequential looks); summed over all buckets they are the totals.
   Decision-level square sums, minima and maxima ride along to recognise 0/1 metrics.

Window functions run on SQLite (3.25+) and PostgreSQL (including the time-partitioned
``decisions`` table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.abstats import MeanStats, RatioStats
from experiments.models import Decision, RewardEvent
from experiments.reports.sql import HOUR, MISSING, OTHER, Moments, Scope, dialect, json_text
from experiments.reports.unit_totals import unit_totals
from experiments.value_bounds import bounded

REWARD_COLUMN = "m0"


@dataclass(frozen=True, slots=True)
class Increment:
    """Change of a group's unit-level sums ``n, Σx, Σx², Σy, Σy², Σxy`` over one cell.

    Not statistics of a set of units by itself (returning units add decisions without
    adding units, and ``Σy²`` can fall when a unit's sum moves towards 0): the running
    total of increments, :meth:`stats`, is.
    """

    n: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_y: float = 0.0
    sum_y2: float = 0.0
    sum_xy: float = 0.0

    def __add__(self, other: Increment) -> Increment:
        return Increment(self.n + other.n, self.sum_x + other.sum_x,
                         self.sum_x2 + other.sum_x2, self.sum_y + other.sum_y,
                         self.sum_y2 + other.sum_y2, self.sum_xy + other.sum_xy)

    def stats(self) -> RatioStats:
        """The statistics these (accumulated) increments add up to."""
        return RatioStats(int(round(self.n)), self.sum_x, max(self.sum_x2, 0.0), self.sum_y,
                          max(self.sum_y2, 0.0), self.sum_xy)


@dataclass(frozen=True, slots=True)
class Cell:
    """Unit-level increments of one (arm, hour[, segment]) group.

    Attributes:
        metrics: Per metric column (``m0`` the reward, ``m1``... the event types), the
            increments of the unit-level statistics.
        decision_moments: Per metric column, decision-level moments (to tell 0/1 metrics).
        covariate: Increments of the CUPED statistics (``None`` without a covariate).
        pending: Decisions whose reward window is still open.
        online: Online-phase decisions.
        without_unit: Decisions without a unit id.
    """

    metrics: dict[str, Increment]
    decision_moments: dict[str, Moments]
    covariate: dict[str, float] | None = None
    pending: int = 0
    online: int = 0
    without_unit: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """What the unit-level query groups and sums.

    Attributes:
        events: Event types that get a metric column each (``m1``, ``m2``...).
        by_hour: Group the output by time bucket of activation (for looks).
        segment: ``(path, top values)`` to group by the first decision's segment label.
        covariate: Context path of a numeric pre-exposure covariate (CUPED).
        bucket_seconds: Width of the time buckets (the ``hour`` column holds bucket
            numbers since the epoch).
    """

    events: Sequence[str] = ()
    by_hour: bool = True
    segment: tuple[tuple[str, ...], Sequence[str]] | None = None
    covariate: tuple[str, ...] | None = None
    bucket_seconds: float = HOUR
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        cols = tuple(f"m{i}" for i in range(len(self.events) + 1))
        object.__setattr__(self, "columns", cols)


def bucket_of(dialect_name: str, column: Any, seconds: float) -> sa.ColumnElement[int]:
    """The time bucket (since the epoch) of a timestamp column: floor(ts / seconds)."""
    if dialect_name == "postgresql":
        return sa.cast(sa.func.floor(column / seconds), sa.BigInteger)
    return sa.cast(column / seconds, sa.Integer)  # timestamps are positive: CAST truncates


def span(session: Session, scope: Scope) -> tuple[float | None, float | None]:
    """First and last activation of the report's decisions."""
    query = sa.select(sa.func.min(Decision.activated_at), sa.func.max(Decision.activated_at))
    where = scope.conditions(covered=dialect(session) == "sqlite")
    low, high = session.execute(query.where(*where)).one()
    return (None if low is None else float(low), None if high is None else float(high))


def numeric(dialect_name: str, column: Any, path: tuple[str, ...]) -> sa.ColumnElement[float]:
    """The JSON number at ``path`` as a float, NULL when absent or not a number."""
    if dialect_name == "postgresql":
        parts = [sa.literal(p, sa.Text) for p in path]
        kind = sa.func.jsonb_typeof(sa.func.jsonb_extract_path(column, *parts))
        text = sa.func.jsonb_extract_path_text(column, *parts)
        return sa.case((kind == "number", sa.cast(text, sa.Double)), else_=None)
    json_path = "$" + "".join(f'."{p}"' for p in path)
    kind = sa.func.json_type(column, json_path)
    value = sa.cast(sa.func.json_extract(column, json_path), sa.Double)
    return sa.case((kind.in_(("integer", "real")), value), else_=None)


def _values(session: Session, scope: Scope, req: Request) -> sa.Subquery:
    """Per activated decision: unit key, arm, hour, metric values, flags, extras."""
    name = dialect(session)
    # PostgreSQL sorts every decision by unit: byte order ("C") is the same partition of
    # units as the database's collation, and cheaper to compare.
    unit = Decision.unit_id.collate("C") if name == "postgresql" else Decision.unit_id
    cols: list[Any] = [
        unit.label("u"), Decision.id.label("did"),
        sa.case((Decision.unit_id.is_(None), Decision.id), else_=None).label("nid"),
        Decision.arm.label("arm"),
        bucket_of(name, Decision.activated_at, req.bucket_seconds).label("hour"),
        Decision.activated_at.label("ts"), scope.reward().label(REWARD_COLUMN),
        sa.case((Decision.closes_at > scope.now, 1), else_=0).label("pend"),
        sa.case((Decision.phase == "online", 1), else_=0).label("onl")]
    query = sa.select(*cols).where(*scope.conditions())
    if req.events:
        per_decision = (
            sa.select(RewardEvent.decision_id.label("d"), *(
                sa.func.sum(sa.case((RewardEvent.type == t, bounded(RewardEvent.value)),
                                else_=0.0))
                .label(f"m{i + 1}") for i, t in enumerate(req.events)))
            .where(RewardEvent.experiment_id == scope.experiment_id,
                   RewardEvent.late.is_(False), RewardEvent.type.in_(list(req.events)))
            .group_by(RewardEvent.decision_id).subquery())
        query = query.outerjoin(per_decision, per_decision.c.d == Decision.id).add_columns(
            *(sa.func.coalesce(per_decision.c[c], 0.0).label(c) for c in req.columns[1:]))
    if req.segment:
        path, top = req.segment
        value = json_text(name, Decision.context, path)
        query = query.add_columns(sa.case((value.is_(None), MISSING),
                                          (value.in_(list(top)), value),
                                          else_=OTHER).label("seg"))
    if req.covariate:
        query = query.add_columns(numeric(name, Decision.context, req.covariate).label("z"))
    return query.subquery()


def _running(values: sa.Subquery, req: Request) -> sa.Subquery:
    """Per decision, window functions over its unit's decisions in time order: the unit's
    running decision count ``x`` and metric sums ``y_*`` up to this decision, and the arm,
    segment and covariate of the unit's first decision."""
    unit = [values.c.u, values.c.nid]
    order = [values.c.ts, values.c.did]  # ties: the first logged is the first decision

    def running(fn: Any) -> Any:
        return fn.over(partition_by=unit, order_by=order, rows=(None, 0))

    cols: list[Any] = [running(sa.func.first_value(values.c.arm)).label("farm"),
                       values.c.hour, values.c.pend, values.c.onl, values.c.u,
                       running(sa.func.count()).label("x")]
    if "seg" in values.c:
        cols.append(running(sa.func.first_value(values.c.seg)).label("fseg"))
    if "z" in values.c:
        cols.append(running(sa.func.first_value(values.c.z)).label("fz"))
    for col in req.columns:
        cols += [values.c[col].label(f"s_{col}"),
                 running(sa.func.sum(values.c[col])).label(f"y_{col}")]
    return sa.select(*cols).subquery()


def _increments(run: sa.Subquery, req: Request) -> list[Any]:
    # Each decision raises its unit's x from x - 1 to x and y from y - s to y.
    x = run.c.x
    new = sa.case((x == 1, 1), else_=0)
    out: list[Any] = [sa.func.sum(new), sa.func.count(), sa.func.sum(2 * x - 1),
                      sa.func.sum(run.c.pend), sa.func.sum(run.c.onl),
                      sa.func.sum(sa.case((run.c.u.is_(None), 1), else_=0))]
    for col in req.columns:
        s, y = run.c[f"s_{col}"], run.c[f"y_{col}"]
        out += [sa.func.sum(s), sa.func.sum(s * (2 * y - s)), sa.func.sum(y + s * x - s),
                sa.func.sum(s * s), sa.func.min(s), sa.func.max(s)]
    if req.covariate:
        z = sa.func.coalesce(run.c.fz, 0.0)
        s0 = run.c[f"s_{REWARD_COLUMN}"]
        missing = sa.case((run.c.fz.is_(None), new), else_=0)
        out += [sa.func.sum(new * z), sa.func.sum(new * z * z), sa.func.sum(z),
                sa.func.sum(z * s0), sa.func.sum(missing)]
    return out


def unit_cells(session: Session, scope: Scope, req: Request) -> dict[tuple[Any, ...], Cell]:
    """Unit-level increments per (first arm[, hour][, segment]), keyed in that order."""
    if (dialect(session) == "sqlite" and not req.by_hour and not req.events
            and req.covariate is None):
        segment = (req.segment[0], list(req.segment[1])) if req.segment else None
        query = unit_totals(session, scope, segment)
        width = 2 if segment else 1
    else:
        run = _running(_values(session, scope, req), req)
        keys: list[Any] = [run.c.farm]
        if req.by_hour:
            keys.append(run.c.hour)
        if req.segment:
            keys.append(run.c.fseg)
        query = sa.select(*keys, *_increments(run, req)).group_by(*keys)
        width = len(keys)
    return {tuple(row[:width]): _cell(row[width:], req) for row in session.execute(query)}


def _cell(row: Sequence[Any], req: Request) -> Cell:
    n, sx, sx2, pend, onl, nounit = row[:6]
    metrics, moments = {}, {}
    for i, col in enumerate(req.columns):
        sy, sy2, sxy, q, lo, hi = row[6 + 6 * i:12 + 6 * i]
        metrics[col] = Increment(*(float(v or 0) for v in (n, sx, sx2, sy, sy2, sxy)))
        moments[col] = Moments(MeanStats.from_aggregates(sx, sy, q),
                               None if lo is None else float(lo),
                               None if hi is None else float(hi))
    covariate = None
    if req.covariate:
        names = ("sum_z", "sum_z2", "sum_zx", "sum_zy", "missing")
        covariate = {k: float(v or 0) for k, v in zip(names, row[-5:], strict=True)}
    return Cell(metrics, moments, covariate, int(pend or 0), int(onl or 0), int(nounit or 0))
