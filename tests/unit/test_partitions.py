"""Partition ranges and names (experiments.partitions): pure, no database."""

from __future__ import annotations

import math

import pytest

from experiments.partitioning import Settings
from experiments.partitions import (
    DAY,
    Span,
    expired,
    is_partition,
    missing,
    parse_bound,
    partition_name,
    period,
    periods,
)

T = 1_795_219_200  # 2026-11-21T00:00:00Z


def test_periods_are_whole_utc_days_from_the_epoch() -> None:
    assert period(T) == period(T + DAY - 1) == Span(T, T + DAY)
    assert period(T - 1) == Span(T - DAY, T)
    assert period(T + 3 * DAY, 7).start % (7 * DAY) == 0
    assert periods(T + 5, T + 2 * DAY) == [Span(T + d * DAY, T + (d + 1) * DAY)
                                           for d in range(3)]


@pytest.mark.parametrize(("wanted", "existing", "expected"), [
    ([Span(0, 10)], [], [Span(0, 10)]),
    ([Span(0, 10)], [Span(0, 10)], []),
    ([Span(0, 10)], [Span(2, 4), Span(8, 20)], [Span(0, 2), Span(4, 8)]),
    ([Span(0, 10), Span(0, 10), Span(10, 20)], [Span(-5, 1)], [Span(1, 10), Span(10, 20)]),
    ([Span(0, 70)], [Span(0, 10), Span(10, 20)], [Span(20, 70)]),  # days, then weeks
    ([Span(0, 10)], [Span(-math.inf, 5)], [Span(5, 10)]),
])
def test_missing_is_what_no_partition_covers(wanted, existing, expected) -> None:
    assert missing(wanted, existing) == expected


def test_missing_never_returns_overlapping_spans() -> None:
    found = missing([Span(0, 7), Span(3, 10)], [])
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    assert found[0].start == 0 and found[-1].end == 10


def test_expired_means_entirely_older_than_the_cutoff() -> None:
    spans = [Span(0, 10), Span(10, 20), Span(20, 30)]
    assert expired(spans, 20) == [Span(0, 10), Span(10, 20)]
    assert expired(spans, 19.9) == [Span(0, 10)]


def test_partition_names() -> None:
    assert partition_name("decisions", Span(T, T + DAY)) == "decisions_p20261121"
    assert partition_name("reward_events", Span(T + 3600, T + DAY)) == \
        "reward_events_p20261121_010000"
    for name in ("decisions_p20261121", "reward_events_default",
                 "reward_events_p20261121_010000"):
        assert is_partition(name)
    for name in ("decisions", "decision_keys", "reward_keys", "decisions_px", "teams"):
        assert not is_partition(name)


@pytest.mark.parametrize(("text", "expected"), [
    ("FOR VALUES FROM ('1795219200') TO ('1795305600')", Span(T, T + DAY)),
    ("FOR VALUES FROM (MINVALUE) TO ('10')", Span(-math.inf, 10)),
    ("FOR VALUES FROM ('1.5') TO (MAXVALUE)", Span(1.5, math.inf)),
    ("DEFAULT", None),
])
def test_parse_bound(text, expected) -> None:
    assert parse_bound(text) == expected


def test_parse_bound_refuses_other_partitioning() -> None:
    with pytest.raises(ValueError, match="not a range partition"):
        parse_bound("FOR VALUES IN (1, 2)")


@pytest.mark.parametrize("kwargs", [{"period_days": 0}, {"ahead_days": -1},
                                    {"retention_days": 0}])
def test_settings_refuse_nonsense(kwargs) -> None:
    with pytest.raises(ValueError):
        Settings(**kwargs)
