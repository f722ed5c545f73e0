"""Progressive validation: how well the learner's policy does on the decisions it learns.

Before each update the learner asks its model for the probability ``q`` of the logged
action, and the champion policy for its probability ``c``. With the logged propensity
``p`` and the joined reward ``r``:

- ``r * q / p`` is an inverse-propensity (IPS) term for the model *as it was before this
  decision* — progressive validation: every term is out-of-sample.
- ``r * (q - c) / p`` is the paired IPS difference between that model and the champion.
  Terms are martingale differences, so their mean has a normal (CLT) interval.

Statistics are sums that add together (``Sums``), kept per bucket of ``bucket_size``
decisions; the window is the last ``window_buckets`` full buckets plus the open one. They
are stored as JSON with each snapshot, so the status endpoint never rescans the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from statistics import NormalDist
from typing import Any

from experiments.interval import Interval
from experiments.verdict import from_interval, legacy_label

DEFAULT_WINDOW = 5000
WINDOW_BUCKETS = 10


@dataclass(frozen=True)
class Sums:
    """Count, sum and sum of squares of a stream of numbers."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, value: float) -> Sums:
        return Sums(self.n + 1, self.total + value, self.total_sq + value * value)

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1), or None below two values."""
        if self.n < 2:
            return None
        return max(self.total_sq - self.total * self.total / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class Observation:
    """One learned decision, as progressive validation sees it."""

    arm: str
    reward: float
    propensity: float
    model_probability: float
    champion_probability: float | None  # None: the champion cannot be evaluated


@dataclass(frozen=True)
class Bucket:
    """Sums over a run of decisions (on-policy per arm, and IPS terms over all)."""

    bandit: Sums = field(default_factory=Sums)
    champion: Sums = field(default_factory=Sums)
    model_ips: Sums = field(default_factory=Sums)
    model_weight: Sums = field(default_factory=Sums)
    champion_ips: Sums = field(default_factory=Sums)
    difference: Sums = field(default_factory=Sums)
    # Apprentice match: over champion decisions where a deterministic champion (the
    # baseline, a fixed action) chose the logged action, the model's probability of that
    # same action before learning it: how often the bandit would have chosen the baseline.
    match: Sums = field(default_factory=Sums)

    @property
    def n(self) -> int:
        return self.model_ips.n

    def observe(self, o: Observation) -> Bucket:
        q = o.model_probability / o.propensity
        paired = o.champion_probability is not None
        c = (o.champion_probability or 0.0) / o.propensity
        imitated = o.arm == "champion" and o.champion_probability == 1.0
        return Bucket(
            bandit=self.bandit.add(o.reward) if o.arm == "bandit" else self.bandit,
            champion=self.champion.add(o.reward) if o.arm == "champion" else self.champion,
            model_ips=self.model_ips.add(o.reward * q), model_weight=self.model_weight.add(q),
            champion_ips=self.champion_ips.add(o.reward * c) if paired else self.champion_ips,
            difference=self.difference.add(o.reward * (q - c)) if paired else self.difference,
            match=self.match.add(o.model_probability) if imitated else self.match)

    def __add__(self, other: Bucket) -> Bucket:
        return Bucket(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_json(self) -> dict[str, list[float]]:
        return {f.name: [s.n, s.total, s.total_sq]
                for f in fields(self) for s in [getattr(self, f.name)]}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> Bucket:
        return cls(**{f.name: Sums(int(data[f.name][0]), *data[f.name][1:])
                      for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Progress:
    """All-time totals and a sliding window of buckets for one model lineage."""

    window: int = DEFAULT_WINDOW
    total: Bucket = field(default_factory=Bucket)
    closed: tuple[Bucket, ...] = ()
    current: Bucket = field(default_factory=Bucket)

    @property
    def bucket_size(self) -> int:
        return max(self.window // WINDOW_BUCKETS, 1)

    def observe(self, o: Observation) -> Progress:
        current = self.current.observe(o)
        closed = self.closed
        if current.n >= self.bucket_size:
            closed, current = (*closed, current)[-WINDOW_BUCKETS:], Bucket()
        return Progress(self.window, self.total.observe(o), closed, current)

    def recent(self) -> Bucket:
        """The window: the last full buckets and the open one (about ``window`` decisions)."""
        result = self.current
        for bucket in self.closed:
            result = result + bucket
        return result

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "total": self.total.to_json(),
                "closed": [b.to_json() for b in self.closed], "current": self.current.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, window: int = DEFAULT_WINDOW) -> Progress:
        """Restore from a snapshot's metrics; a different window starts a new one."""
        if not data or data.get("window") != window:
            total = Bucket.from_json(data["total"]) if data and "total" in data else Bucket()
            return cls(window, total)
        return cls(window, Bucket.from_json(data["total"]),
                   tuple(Bucket.from_json(b) for b in data["closed"]),
                   Bucket.from_json(data["current"]))


@dataclass(frozen=True)
class Comparison:
    """Paired progressive IPS difference, model minus champion, with a normal interval."""

    n: int
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: str  # better | worse | inconclusive | insufficient_data


MIN_COMPARISON = 30


def compare(bucket: Bucket, alpha: float) -> Comparison:
    """Does the learner's policy beat the champion on these decisions?"""
    d = bucket.difference
    variance = d.variance
    if d.n < MIN_COMPARISON or variance is None:
        return Comparison(d.n, d.mean, None, None, "insufficient_data")
    half = NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(variance / d.n)
    mean = d.mean or 0.0
    low, high = mean - half, mean + half
    # The words of the one verdict function (experiments.verdict): better = ship.
    decision = from_interval("progressive", "bandit", mean, Interval(low, high, 1 - alpha))
    return Comparison(d.n, mean, low, high, legacy_label(decision))


def snips(bucket: Bucket) -> float | None:
    """Self-normalized IPS value of the model (less variance, slightly biased)."""
    weight = bucket.model_weight.total
    return bucket.model_ips.total / weight if weight > 0 else None
