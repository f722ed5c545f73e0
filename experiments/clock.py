"""Wall-clock time in one place, so tests and the learner agree on what "now" is."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """Seconds since the UNIX epoch (UTC)."""
    return time.time()


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
