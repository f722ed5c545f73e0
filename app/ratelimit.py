"""Per-key rate limits: token buckets, one per (key, kind) and per worker process.

Each kind of call (`rank`, `reward`) has a rate (requests per second) and a burst (the
bucket's size). A bucket starts full, refills continuously at `rate`, and each request
takes one token; a request finding less than one token is refused with the time until
the next token (429 + Retry-After).

The buckets live in the process, so with N gunicorn workers a key may get up to N times
its limit in aggregate (a load balancer spreading requests evenly makes it about exactly
N times). That is the trade-off we chose: zero cost on the hot path (no database write
or shared store per request) against an approximate, per-worker limit. Set the limit to
(intended total / workers); see docs/security.md.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Which endpoints draw from which bucket (Flask endpoint names). The Personalizer views
# declare theirs (`app.personalizer.routes.route(kind=...)`).
ENDPOINT_KINDS = {
    "api.rank": "rank", "api.reward": "reward", "api.reward_batch": "reward",
    "api.activate": "reward",
}
MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Limit:
    rate: float
    burst: float

    @classmethod
    def parse(cls, spec: Any) -> Limit | None:
        """`0`/None → no limit; `100` → 100/s with a burst of 200; `"100/300"` → burst 300."""
        if spec is None or spec == "":
            return None
        if isinstance(spec, Mapping):
            rate, burst = spec.get("rate", 0), spec.get("burst")
        else:
            text = str(spec).strip()
            rate_text, _, burst_text = text.partition("/")
            try:
                rate = float(rate_text)
                burst = float(burst_text) if burst_text else None
            except ValueError:
                raise ValueError(f"rate limit {spec!r}: expected RATE or RATE/BURST") from None
        if rate is None or rate <= 0 or not math.isfinite(rate):
            return None
        burst = max(1.0, 2 * rate) if burst is None else float(burst)
        if burst < 1:
            raise ValueError(f"rate limit {spec!r}: burst must be at least 1")
        return cls(float(rate), burst)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens, self.updated = tokens, updated

    def take(self, limit: Limit, now: float) -> float:
        """Take a token; 0.0 when granted, else the seconds until one is available."""
        self.tokens = min(limit.burst, self.tokens + (now - self.updated) * limit.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / limit.rate


class RateLimiter:
    """The buckets of one process (thread-safe). `defaults` maps a kind to its limit."""

    def __init__(self, defaults: Mapping[str, Limit | None],
                 clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS) -> None:
        self.defaults = dict(defaults)
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[tuple[str, str, Limit], _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def limit_for(self, kind: str, overrides: Mapping[str, Any] | None) -> Limit | None:
        if overrides and kind in overrides:
            return Limit.parse(overrides[kind])
        return self.defaults.get(kind)

    def check(self, key_id: str, kind: str,
              overrides: Mapping[str, Any] | None = None) -> tuple[float, Limit | None]:
        """(seconds to wait, the limit applied); a wait of 0.0 means go ahead."""
        limit = self.limit_for(kind, overrides)
        if limit is None:
            return 0.0, None
        now = self._clock()
        # The limit is part of the bucket's key: changing a key's limits starts afresh.
        name = (key_id, kind, limit)
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = _Bucket(limit.burst, now)
                if len(self._buckets) > self._max:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(name)
            return bucket.take(limit, now), limit
