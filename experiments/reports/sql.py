"""SQL aggregates for the A/B report: GROUP BY queries that return sufficient statistics.

Every query here returns one row per group (arm, hour, event type, segment value, action),
never one row per decision, so a report's memory and transfer do not grow with the log.
Groups carry ``COUNT``, ``SUM``, ``SUM`` of squares, and ``MIN``/``MAX`` (to recognise 0/1
metrics); :mod:`experiments.abstats` analyses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments.abstats import MeanStats, is_zero_one
from experiments.errors import ValidationFailed
from experiments.models import Decision
from experiments.value_bounds import VALUE_BOUND, bounded

HOUR = 3600.0
MISSING = "(missing)"
OTHER = "(other)"
# A segment field is a top-level context key or `namespace.key`; plain names only, so the
# JSON path cannot be bent into something else.
_FIELD = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64})?$")


@dataclass(frozen=True, slots=True)
class Moments:
    """Sufficient statistics of a metric plus its range (to tell 0/1 metrics apart).

    Attributes:
        stats: Count, sum and sum of squares.
        low: Smallest value, ``None`` without observations.
        high: Largest value, ``None`` without observations.
    """

    stats: MeanStats
    low: float | None = None
    high: float | None = None

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.stats + other.stats, _pick(min, self.low, other.low),
                       _pick(max, self.high, other.high))

    @property
    def bounded(self) -> bool:
        """Whether some value was counted at the bound (``experiments.value_bounds``)."""
        return ((self.high is not None and self.high >= VALUE_BOUND)
                or (self.low is not None and self.low <= -VALUE_BOUND))

    @property
    def binary(self) -> bool:
        """Whether every value is 0 or 1 (``0 <= x <= 1`` and ``sum(x) == sum(x**2)``)."""
        return is_zero_one(self.stats, self.low, self.high)


def _pick(fn: Any, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return fn(a, b)


EMPTY = Moments(MeanStats.empty())


@dataclass(frozen=True, slots=True)
class Scope:
    """Which decisions a report counts.

    Attributes:
        experiment_id: The experiment.
        default_reward: Reward of a decision that received none (``reward.default``).
        now: The report's clock; windows closing after it are open (pending).
        include_open: Count decisions whose reward window is still open.
        since: Count only decisions logged at or after it (``None``: from the start).
    """

    experiment_id: int
    default_reward: float
    now: float
    include_open: bool = True
    since: float | None = None

    def conditions(self, table: Any = Decision, *, covered: bool = False
                   ) -> list[sa.ColumnElement[bool]]:
        """Activated, served live (not paused, not imported from another system's log),
        logged before ``now`` (and closed, unless include_open); ``table``: an alias of
        ``Decision`` to filter instead.

        ``covered`` writes the time bound as ``created_at + 0``, which no index serves:
        SQLite then reads a covering index of the experiment instead of walking
        ``(experiment_id, created_at)`` and reading every wide row (the span of 1M
        decisions: 0.5 s of CPU to 0.2 s). Not for PostgreSQL, which prunes partitions
        with the plain bound.
        """
        created = table.created_at + 0 if covered else table.created_at
        found = [table.experiment_id == self.experiment_id,
                 table.activated_at.is_not(None),
                 table.phase.not_in(("paused", "imported")),
                 created <= self.now]
        if not self.include_open:
            found.append(table.closes_at <= self.now)
        if self.since is not None:
            found.append(created >= self.since)
        return found

    def reward(self) -> sa.ColumnElement[float]:
        """The reward per decision: the running aggregate, or the default where none came
        (:func:`bounded`)."""
        return bounded(sa.func.coalesce(Decision.reward, self.default_reward))


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def tune(session: Session) -> None:
    """Settings for the report's scans, for the current transaction only (PostgreSQL).

    JIT compilation costs more than it saves on these one-off aggregates, and 64 MB of
    work memory keeps the unit-id hash and the segment sorts off disk at millions of rows.
    """
    if dialect(session) == "postgresql":
        session.execute(sa.text("SET LOCAL jit = off"))
        session.execute(sa.text("SET LOCAL work_mem = '64MB'"))


def validate_field(field: str, name: str = "segment") -> tuple[str, ...]:
    """``"country"`` or ``"user.country"`` as a path, or a 400 naming ``name`` (the query
    parameter: ``segment`` of the A/B report, ``attribute`` of the fairness report)."""
    if not isinstance(field, str) or not _FIELD.match(field):
        raise ValidationFailed.field(
            name, "must be a context field: `name` or `namespace.name` "
            "(letters, digits, _ and -)")
    return tuple(field.split("."))


def json_text(dialect_name: str, column: Any, path: tuple[str, ...]) -> sa.ColumnElement[str]:
    """The JSON value at ``path`` as text (NULL when absent), the same on both databases.

    PostgreSQL: ``jsonb_extract_path_text``. SQLite: ``json_extract`` cast to text, with
    booleans spelled ``true``/``false`` as PostgreSQL does (SQLite would give 1/0).
    """
    if dialect_name == "postgresql":
        return sa.func.jsonb_extract_path_text(column, *[sa.literal(p, sa.Text) for p in path])
    json_path = "$" + "".join(f'."{p}"' for p in path)
    kind = sa.func.json_type(column, json_path)
    return sa.case((kind == "true", "true"), (kind == "false", "false"),
                   else_=sa.cast(sa.func.json_extract(column, json_path), sa.Text))


def units_by_arm(session: Session, scope: Scope, *, online_only: bool = False
                 ) -> dict[str, int]:
    """Distinct units per arm; a decision without a unit id is a unit of its own.

    ``online_only`` counts online-phase decisions only (the SRM test: in the apprentice
    phase every decision goes to the champion by design).
    """
    where = scope.conditions()
    if online_only:
        where.append(Decision.phase == "online")
    return _count_units(session, [Decision.arm], Decision.unit_id, where)


def segment_actions(session: Session, scope: Scope, path: tuple[str, ...], limit: int
                    ) -> tuple[list[str], dict[tuple[str, str, str], int]]:
    """The ``limit`` most frequent values of a context field (missing values excluded, most
    frequent first, ties by value), and decisions per (segment, arm, chosen action), where a
    decision's segment is its field value if among them, else ``(missing)`` or ``(other)``.

    One statement, one JSON extraction per decision: decisions are counted per raw value,
    arm and action first; the top values and the labels come from those counts.
    """
    value = json_text(dialect(session), Decision.context, path).label("value")
    rows = sa.select(value, Decision.arm, Decision.action_id).where(
        *scope.conditions()).subquery()
    raw = (sa.select(rows.c.value, rows.c.arm, rows.c.action_id, sa.func.count().label("n"))
           .group_by(rows.c.value, rows.c.arm, rows.c.action_id).cte("raw"))
    total = sa.func.sum(raw.c.n)
    top = (sa.select(raw.c.value, sa.func.row_number().over(
                order_by=[total.desc(), raw.c.value]).label("rank"))
           .where(raw.c.value.is_not(None)).group_by(raw.c.value)
           .order_by(total.desc(), raw.c.value).limit(limit).subquery())
    label = sa.case((raw.c.value.is_(None), MISSING), (top.c.rank.is_not(None), raw.c.value),
                    else_=OTHER).label("segment")
    labelled = (sa.select(label, raw.c.arm, raw.c.action_id, raw.c.n, top.c.rank)
                .outerjoin(top, top.c.value == raw.c.value).subquery())
    c = labelled.c
    query = (sa.select(c.segment, c.arm, c.action_id, sa.func.sum(c.n), sa.func.min(c.rank))
             .group_by(c.segment, c.arm, c.action_id))
    counts, ranks = {}, {}
    for seg, arm, action, n, rank in session.execute(query):
        counts[(seg, arm, action)] = int(n)
        if rank is not None:
            ranks[seg] = int(rank)
    return sorted(ranks, key=ranks.__getitem__), counts


def _count_units(session: Session, keys: list[Any], unit: Any,
                 where: list[sa.ColumnElement[bool]] | None = None) -> dict[Any, int]:
    """Distinct ``unit`` per ``keys``, NULL units counting one each.

    PostgreSQL: ``GROUP BY keys, unit`` then a count, so that it hashes instead of sorting
    every unit id for ``COUNT(DISTINCT)``. SQLite sorts either way and is faster with
    ``COUNT(DISTINCT)`` (half the CPU on 100k decisions).
    """
    if dialect(session) == "sqlite":
        units = sa.func.count(sa.distinct(unit)) + sa.func.count() - sa.func.count(unit)
        query = sa.select(*keys, units).where(*(where or [])).group_by(*keys)
    else:
        pairs = (sa.select(*(k.label(f"k{i}") for i, k in enumerate(keys)),
                           unit.label("unit"), sa.func.count().label("c"))
                 .where(*(where or [])).group_by(*keys, unit).subquery())
        names = [pairs.c[f"k{i}"] for i in range(len(keys))]
        counted = sa.func.sum(sa.case((pairs.c.unit.is_(None), pairs.c.c), else_=1))
        query = sa.select(*names, counted).group_by(*names)
    return {(tuple(k) if len(k) > 1 else k[0]): int(n)
            for *k, n in session.execute(query)}


def actions_by_arm(session: Session, scope: Scope) -> dict[tuple[str, str], int]:
    """Decisions per (arm, chosen action)."""
    query = (sa.select(Decision.arm, Decision.action_id, sa.func.count())
             .where(*scope.conditions()).group_by(Decision.arm, Decision.action_id))
    return {(arm, action): int(n) for arm, action, n in session.execute(query)}
