"""Metrics of a report assembled from the SQL aggregates: totals and per-look increments.

A *look* is one time bucket of activation (an hour for young experiments, a day
otherwise); per-look increments feed the sequential tests (a running minimum over looks)
and the cumulative chart. The reward metric and every event-type metric share the same
decisions (``n`` per arm and look), so event metrics add the zeros of decisions that did
not receive the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from experiments.abstats import MeanStats
from experiments.reports.sql import EMPTY, HOUR, HourRow, Moments

REWARD = "reward"
EVENT_PREFIX = "event:"
# Below this span (hours) looks are hourly, so a young experiment still has a curve.
HOURLY_SPAN = 72


@dataclass(frozen=True, slots=True)
class Looks:
    """The report's time buckets.

    Attributes:
        unit: ``"hour"`` or ``"day"``.
        buckets: Bucket numbers since the epoch, ascending (``start = bucket * seconds``).
        seconds: Bucket width in seconds.
    """

    unit: str
    buckets: tuple[int, ...]
    seconds: float

    def bucket_of(self, hour: int) -> int:
        return hour if self.unit == "hour" else hour // 24

    def end(self, bucket: int) -> float:
        """Epoch seconds at which a bucket ends."""
        return (bucket + 1) * self.seconds


def choose_looks(hours: Iterable[int]) -> Looks:
    """Hourly looks when activity spans under three days, daily looks otherwise."""
    seen = sorted(set(hours))
    if not seen or seen[-1] - seen[0] < HOURLY_SPAN:
        return Looks("hour", tuple(seen), HOUR)
    return Looks("day", tuple(sorted({h // 24 for h in seen})), 24 * HOUR)


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of every arm.

    Attributes:
        name: ``"reward"`` or ``"event:<type>"``.
        binary: Every value is 0 or 1 (then proportions tests and Wilson intervals).
        totals: Statistics per arm over the whole report.
        looks: Per arm, the statistics of each look's new decisions (aligned with
            :attr:`Looks.buckets`).
    """

    name: str
    binary: bool
    totals: dict[str, MeanStats]
    looks: dict[str, list[MeanStats]]


def _by_look(cells: Mapping[tuple[str, int], Moments], arms: list[str],
             looks: Looks) -> dict[str, list[Moments]]:
    index = {b: i for i, b in enumerate(looks.buckets)}
    out = {arm: [EMPTY] * len(looks.buckets) for arm in arms}
    for (arm, hour), m in cells.items():
        i = index[looks.bucket_of(hour)]
        out[arm][i] = out[arm][i] + m
    return out


def _metric(name: str, per_look: dict[str, list[Moments]]) -> Metric:
    totals = {arm: sum(cells, EMPTY) for arm, cells in per_look.items()}
    binary = sum(totals.values(), EMPTY).binary
    return Metric(name, binary, {arm: m.stats for arm, m in totals.items()},
                  {arm: [m.stats for m in cells] for arm, cells in per_look.items()})


def reward_metric(rows: Mapping[tuple[str, int], HourRow], arms: list[str],
                  looks: Looks) -> Metric:
    """The experiment's reward per decision (default where none came)."""
    return _metric(REWARD, _by_look({k: r.reward for k, r in rows.items()}, arms, looks))


def event_metric(kind: str, cells: Mapping[tuple[str, str, int], Moments],
                 reward: Metric, looks: Looks) -> Metric:
    """Sum of one event type's non-late values per decision (0 without such events)."""
    mine = {(arm, hour): m for (arm, k, hour), m in cells.items() if k == kind}
    with_event = _by_look(mine, list(reward.looks), looks)
    per_look = {arm: [_with_zeros(m, n.n) for m, n in zip(cells_, reward.looks[arm],
                                                         strict=True)]
                for arm, cells_ in with_event.items()}
    return _metric(EVENT_PREFIX + kind, per_look)


def _with_zeros(events: Moments, decisions: int) -> Moments:
    """Moments over all ``decisions`` when only ``events.stats.n`` of them had a value."""
    zeros = decisions - events.stats.n
    if zeros <= 0:
        return events
    s = events.stats
    low = 0.0 if events.low is None else min(events.low, 0.0)
    high = 0.0 if events.high is None else max(events.high, 0.0)
    return Moments(MeanStats(decisions, s.total, s.total_sq), low, high)
