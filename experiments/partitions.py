"""Time partitions of `decisions` and `reward_events` on PostgreSQL: which ranges, which
names. Pure functions; `experiments.partitioning` runs the SQL.

A partition holds the rows whose time (epoch seconds) is in ``[start, end)``. Periods
are whole UTC days counted from the epoch: ``period_days=1`` gives one partition per
day, ``period_days=7`` one per week (weeks starting on Thursday, the epoch's weekday).
Changing the period later only shapes the ranges not covered yet: a new range is cut
around the partitions that exist, never overlapping them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

DAY = 86400


@dataclass(frozen=True)
class PartitionedTable:
    """A partitioned table, its time column, and how its idempotency keys are removed
    with a partition (SQL over the partition aliased ``p``)."""

    name: str
    column: str
    keys: str
    key_match: str


TABLES = (
    PartitionedTable("decisions", "created_at", "decision_keys",
                     "k.experiment_id = p.experiment_id AND k.event_id = p.event_id "
                     "AND k.decision_id = p.id"),
    PartitionedTable("reward_events", "received_at", "reward_keys",
                     "k.experiment_id = p.experiment_id "
                     "AND k.idempotency_key = p.idempotency_key AND k.reward_event_id = p.id"),
)


@dataclass(frozen=True, order=True)
class Span:
    """``[start, end)`` in epoch seconds."""

    start: float
    end: float

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


def period(ts: float, period_days: int = 1) -> Span:
    """The period holding ``ts``.

    >>> period(86400 * 3 + 5)
    Span(start=259200, end=345600)
    """
    length = period_days * DAY
    start = math.floor(ts / length) * length
    return Span(start, start + length)


def periods(start: float, end: float, period_days: int = 1) -> list[Span]:
    """The periods covering ``[start, end]`` in order (the one holding ``end`` included)."""
    spans = [period(start, period_days)]
    while spans[-1].end <= end:
        spans.append(Span(spans[-1].end, spans[-1].end + period_days * DAY))
    return spans


def missing(wanted: Iterable[Span], existing: Iterable[Span]) -> list[Span]:
    """The parts of ``wanted`` that no ``existing`` span covers, sorted, without repeats.

    >>> missing([Span(0, 10)], [Span(2, 4), Span(8, 20)])
    [Span(start=0, end=2), Span(start=4, end=8)]
    """
    taken = sorted(existing)
    found: set[Span] = set()
    for span in wanted:
        found.update(_subtract(span, taken))
    return _without_overlaps(sorted(found))


def _subtract(span: Span, taken: list[Span]) -> list[Span]:
    pieces, start = [], span.start
    for other in taken:
        if other.end <= start or not other.overlaps(span):
            continue
        if other.start > start:
            pieces.append(Span(start, other.start))
        start = max(start, other.end)
    if start < span.end:
        pieces.append(Span(start, span.end))
    return pieces


def _without_overlaps(spans: list[Span]) -> list[Span]:
    """Wanted spans cut around the same existing ones can overlap one another only when
    they came from different period lengths; keep the first of each overlap."""
    kept: list[Span] = []
    for span in spans:
        if kept and span.start < kept[-1].end:
            if span.end > kept[-1].end:
                kept.append(Span(kept[-1].end, span.end))
            continue
        kept.append(span)
    return kept


def expired(spans: Iterable[Span], cutoff: float) -> list[Span]:
    """Spans entirely older than ``cutoff`` (retention drops only whole partitions)."""
    return sorted(s for s in spans if s.end <= cutoff)


def partition_name(table: str, span: Span) -> str:
    """``decisions_p20261121`` (the day it starts, UTC); a start within a day adds the time.

    >>> partition_name("decisions", Span(0, 86400))
    'decisions_p19700101'
    """
    layout = "%Y%m%d" if span.start % DAY == 0 else "%Y%m%d_%H%M%S"
    return f"{table}_p{time.strftime(layout, time.gmtime(span.start))}"


def default_name(table: str) -> str:
    return f"{table}_default"


_PARTITION = re.compile(
    "^(" + "|".join(t.name for t in TABLES) + r")_(default|p\d{8}(_\d{6})?)$")


def is_partition(name: str) -> bool:
    """Whether a table name is one of our partitions (not a table of the models)."""
    return _PARTITION.match(name) is not None


_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


def parse_bound(expression: str) -> Span | None:
    """A range partition's bound as PostgreSQL prints it (``pg_get_expr``); None for
    ``DEFAULT``.

    >>> parse_bound("FOR VALUES FROM ('86400') TO ('172800')")
    Span(start=86400.0, end=172800.0)
    """
    if expression.strip().upper() == "DEFAULT":
        return None
    found = _BOUND.search(expression)
    if found is None:
        raise ValueError(f"not a range partition bound: {expression!r}")
    return Span(_bound_value(found.group(1)), _bound_value(found.group(2)))


def _bound_value(text: str) -> float:
    value = text.strip().strip("'")
    if value.upper() == "MINVALUE":
        return -math.inf
    if value.upper() == "MAXVALUE":
        return math.inf
    return float(value)
