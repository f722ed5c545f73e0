"""Partition maintenance on PostgreSQL: create time partitions ahead, empty the DEFAULT
partition into the partitions its rows belong to, and (only when configured) drop
partitions past the retention period with their idempotency keys.

`tailor partitions maintain` runs it, and so does the learner (`tailor learn`) at start
and every `PARTITION_MAINTAIN_SECONDS`. Each table is maintained in its own transaction
with a short lock timeout: creating, detaching or dropping a partition locks the parent
table, and waiting behind a long report would hold every rank queued behind the wait.
A timeout aborts that table's round; the next round catches up (partitions exist days
ahead, and rows landing in the DEFAULT partition meanwhile are moved out later).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from experiments import clock
from experiments.partitions import (
    DAY,
    TABLES,
    PartitionedTable,
    Span,
    default_name,
    expired,
    missing,
    parse_bound,
    partition_name,
    period,
    periods,
)

log = logging.getLogger("tailor.partitions")

LOCK_TIMEOUT = "5s"


class NotPartitioned(Exception):
    """The database is not PostgreSQL: its tables are not partitioned."""


@dataclass(frozen=True)
class Settings:
    """How partitions are kept.

    Attributes:
        period_days: Days per new partition.
        ahead_days: Partitions exist at least this many days past now.
        retention_days: Drop partitions entirely older than this many days (their rows
            and idempotency keys are deleted); None keeps everything.
    """

    period_days: int = 1
    ahead_days: int = 7
    retention_days: int | None = None

    def __post_init__(self) -> None:
        if self.period_days < 1 or self.ahead_days < 0:
            raise ValueError("period_days must be >= 1 and ahead_days >= 0")
        if self.retention_days is not None and self.retention_days < 1:
            raise ValueError("retention_days must be >= 1 (or None: keep everything)")


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    span: Span | None  # None: the DEFAULT partition
    estimated_rows: int


@dataclass
class Report:
    """What one maintenance round did."""

    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0
    deleted_keys: int = 0


def partitions(connection: sa.Connection, table: str) -> list[Partition]:
    """The partitions of `table` in range order, the DEFAULT one first."""
    _require_postgresql(connection)
    rows = connection.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table}).all()
    found = [Partition(table, name, parse_bound(bound), max(int(tuples), 0))
             for name, bound, tuples in rows]
    return sorted(found, key=lambda p: (p.span is not None, p.span or Span(0, 0)))


def maintain(engine: sa.Engine, settings: Settings, now: float | None = None) -> Report:
    """One round over every partitioned table; each table in its own transaction."""
    now = clock.now() if now is None else now
    report = Report()
    with engine.connect() as connection:
        _require_postgresql(connection)
    for table in TABLES:
        with engine.begin() as connection:
            connection.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            _maintain(connection, table, settings, now, report)
    return report


def _maintain(connection: sa.Connection, table: PartitionedTable, settings: Settings,
              now: float, report: Report) -> None:
    existing = partitions(connection, table.name)
    if not any(p.span is None for p in existing):
        _execute(connection, f"CREATE TABLE {_q(connection, default_name(table.name))} "
                             f"PARTITION OF {table.name} DEFAULT")
        report.created.append(default_name(table.name))
    cutoff = None if settings.retention_days is None else now - settings.retention_days * DAY
    wanted = periods(now, now + settings.ahead_days * DAY, settings.period_days)
    wanted += _default_periods(connection, table, settings.period_days)
    wanted = [span for span in wanted if cutoff is None or span.end > cutoff]
    spans = missing(wanted, [p.span for p in existing if p.span is not None])
    if spans:
        _create(connection, table, spans, report)
    if cutoff is not None:
        _drop_expired(connection, table, existing, cutoff, report)
        _purge_default(connection, table, cutoff, report)


def _default_periods(connection: sa.Connection, table: PartitionedTable,
                     period_days: int) -> list[Span]:
    """The periods of the rows sitting in the DEFAULT partition (normally none)."""
    length = period_days * DAY
    starts = connection.execute(sa.text(
        f"SELECT DISTINCT floor({table.column} / {length}) * {length} "
        f"FROM {_q(connection, default_name(table.name))}")).scalars()
    return [period(start, period_days) for start in starts]


def _create(connection: sa.Connection, table: PartitionedTable, spans: list[Span],
            report: Report) -> None:
    """Create the partitions of `spans`. PostgreSQL refuses a partition whose range has
    rows in the DEFAULT partition, so when it does: detach the default, create, move
    those rows into their partitions, attach the default again (one transaction)."""
    default = _q(connection, default_name(table.name))
    occupied = [span for span in spans if connection.execute(sa.text(
        f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {_within(table, span)})")).scalar()]
    if occupied:
        _execute(connection, f"ALTER TABLE {table.name} DETACH PARTITION {default}")
    for span in spans:
        name = partition_name(table.name, span)
        _execute(connection, f"CREATE TABLE {_q(connection, name)} PARTITION OF "
                             f"{table.name} FOR VALUES FROM ({span.start!r}) TO ({span.end!r})")
        report.created.append(name)
        log.info("partition %s created for [%s, %s)", name, clock.iso(span.start),
                 clock.iso(span.end))
    for span in occupied:
        moved = _rowcount(connection.execute(sa.text(
            f"WITH moved AS (DELETE FROM {default} WHERE {_within(table, span)} RETURNING *) "
            f"INSERT INTO {table.name} SELECT * FROM moved")))
        report.moved_rows += moved
        log.info("%d row(s) of %s moved from %s into their new partition", moved,
                 table.name, default_name(table.name))
    if occupied:
        _execute(connection, f"ALTER TABLE {table.name} ATTACH PARTITION {default} DEFAULT")


def _drop_expired(connection: sa.Connection, table: PartitionedTable,
                  existing: list[Partition], cutoff: float, report: Report) -> None:
    """Retention: drop partitions whose whole range is older than `cutoff`, deleting the
    idempotency keys of their rows first (a key must not outlive its row)."""
    by_span = {p.span: p for p in existing if p.span is not None}
    for span in expired(by_span, cutoff):
        name = _q(connection, by_span[span].name)
        keys = _rowcount(connection.execute(sa.text(
            f"DELETE FROM {table.keys} k USING {name} p WHERE {table.key_match}")))
        rows = connection.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
        _execute(connection, f"DROP TABLE {name}")
        report.dropped.append(by_span[span].name)
        report.deleted_rows += rows
        report.deleted_keys += keys
        log.warning("retention: dropped partition %s [%s, %s): %d row(s), %d key(s)",
                    by_span[span].name, clock.iso(span.start), clock.iso(span.end), rows, keys)


def _purge_default(connection: sa.Connection, table: PartitionedTable, cutoff: float,
                   report: Report) -> None:
    """Retention for rows of the DEFAULT partition older than `cutoff` (their periods get
    no partition, so no DROP would ever remove them)."""
    default = _q(connection, default_name(table.name))
    old = f"p.{table.column} < :cutoff"
    keys = _rowcount(connection.execute(sa.text(
        f"DELETE FROM {table.keys} k USING {default} p WHERE {old} AND {table.key_match}"),
        {"cutoff": cutoff}))
    rows = _rowcount(connection.execute(sa.text(
        f"DELETE FROM {default} p WHERE {old}"), {"cutoff": cutoff}))
    if rows or keys:
        report.deleted_rows += rows
        report.deleted_keys += keys
        log.warning("retention: deleted %d row(s) and %d key(s) of %s older than %s from "
                    "its default partition", rows, keys, table.name, clock.iso(cutoff))


def _within(table: PartitionedTable, span: Span) -> str:
    return f"{table.column} >= {span.start!r} AND {table.column} < {span.end!r}"


def _execute(connection: sa.Connection, statement: str) -> None:
    connection.execute(sa.text(statement))


def _rowcount(result: sa.CursorResult[Any]) -> int:
    return max(result.rowcount or 0, 0)


def _q(connection: sa.Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _require_postgresql(connection: sa.Connection) -> None:
    if connection.dialect.name != "postgresql":
        raise NotPartitioned("partitioning applies to PostgreSQL only "
                             f"(this database is {connection.dialect.name})")
