"""Wall-clock time in one place, so tests and the learner agree on what "now" is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime


class SimulatedTime:
    """A clock that only moves when told (`tailor demo` replays minutes in a second)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


_simulated: ContextVar[SimulatedTime | None] = ContextVar("tailor_simulated_time",
                                                          default=None)


def now() -> float:
    """Seconds since the UNIX epoch (UTC); the simulated time inside `simulated`."""
    fake = _simulated.get()
    return time.time() if fake is None else fake.now


@contextmanager
def simulated(start: float) -> Iterator[SimulatedTime]:
    """Within the block (this thread/context only), `now()` is the returned clock's time.

    >>> with simulated(100.0) as fake:
    ...     _ = fake.advance(5)
    ...     now()
    105.0
    """
    fake = SimulatedTime(start)
    token = _simulated.set(fake)
    try:
        yield fake
    finally:
        _simulated.reset(token)


def iso(ts: float | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Parse ISO 8601 (a trailing `Z` allowed; naive means UTC) into epoch seconds."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
