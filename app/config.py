"""Configuration: defaults in code, then the environment (`TAILOR_*`, `DATABASE_URL`), then
the mapping a caller (a test) passes to `create_app`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.ratelimit import Limit

CHECKOUT = Path(__file__).resolve().parents[1]  # a source checkout, or site-packages

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # default_database_url()
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "MAX_ACTIONS": 1000,
    "MAX_BATCH_REWARDS": 1000,
    "MODEL_CHECK_SECONDS": 1.0,
    # WAL + NORMAL: a commit survives a crash of the process, not of the machine (power
    # loss may drop the last commits); FULL fsyncs every commit at half the rank
    # throughput. Measured in docs/bench-rank.md; see docs/operations.md.
    "SQLITE_SYNCHRONOUS": "NORMAL",
    "DB_POOL_SIZE": 5,
    # PostgreSQL cancels a statement of the web app running longer than this (ms), so a
    # stuck query answers 503 instead of holding a worker; 0 = no bound. The longest
    # legitimate ones are reports over millions of decisions (docs/bench-reports.md).
    "STATEMENT_TIMEOUT_MS": 120_000,
    "SECRET_KEY": None,
    "SESSION_COOKIE_SECURE": False,
    "PII_SECRET": None,
    # Register POST /bench/noop, the ceiling of bench/rank.py (docs/bench-rank.md).
    "BENCH_NOOP": False,
    # GET /metrics without a key (Prometheus scrapers have none; docs/operations.md).
    "METRICS_PUBLIC": True,
    # Per key and worker: "RATE" or "RATE/BURST" requests per second; 0 = off (docs/security.md).
    "RATE_LIMIT_RANK": "0",
    "RATE_LIMIT_REWARD": "0",
    # Comma-separated field names always treated as PII; None = the built-in list.
    "PII_DEFAULT_FIELDS": None,
    # Promotion needs an OPE report at most this old, over at most this much less data
    # than there is now (docs/ope.md).
    "PROMOTION_MAX_REPORT_AGE_SECONDS": 24 * 3600.0,
    "PROMOTION_MAX_DECISION_GROWTH": 0.1,
    # Largest model snapshot an admin may import (bytes).
    "MAX_MODEL_BYTES": 256 * 1024 * 1024,
    # PostgreSQL time partitions of decisions and rewards (docs/SCALING.md): days per
    # partition, days created ahead, how often the learner maintains them, and the
    # retention in days (0: keep everything; otherwise older partitions are DROPPED).
    "PARTITION_PERIOD_DAYS": 1,
    "PARTITION_AHEAD_DAYS": 7,
    "PARTITION_MAINTAIN_SECONDS": 3600.0,
    "PARTITION_RETENTION_DAYS": 0,
    # Size of one context or action's features (experiments/limits.py): features per
    # namespace, features in all, characters per string. Above: 413 naming the path.
    "MAX_NAMESPACE_FEATURES": 2048,
    "MAX_CONTEXT_FEATURES": 8192,
    "MAX_STRING_LENGTH": 4096,
    # A worker checks a team's profile change counter at most this often (seconds): a
    # profile write is seen by every worker's next rank within this time.
    "PROFILE_CHECK_SECONDS": 1.0,
    # A key's last_used_at is written by a background thread this often (seconds), never
    # by authentication: its resolution (experiments/last_used.py, docs/security.md).
    "KEY_LAST_USED_SECONDS": 60.0,
}

_INT_KEYS = {"MAX_CONTENT_LENGTH", "MAX_ACTIONS", "MAX_BATCH_REWARDS", "DB_POOL_SIZE",
             "MAX_MODEL_BYTES", "STATEMENT_TIMEOUT_MS", "PARTITION_PERIOD_DAYS",
             "PARTITION_AHEAD_DAYS", "PARTITION_RETENTION_DAYS"}
_INT_KEYS |= {"MAX_NAMESPACE_FEATURES", "MAX_CONTEXT_FEATURES", "MAX_STRING_LENGTH"}
_FLOAT_KEYS = {"MODEL_CHECK_SECONDS", "PROMOTION_MAX_REPORT_AGE_SECONDS",
               "PROMOTION_MAX_DECISION_GROWTH", "PARTITION_MAINTAIN_SECONDS"}
_FLOAT_KEYS |= {"PROFILE_CHECK_SECONDS"}
_FLOAT_KEYS |= {"KEY_LAST_USED_SECONDS"}
_AT_LEAST_ONE = {"MAX_CONTENT_LENGTH", "MAX_ACTIONS", "MAX_BATCH_REWARDS", "DB_POOL_SIZE",
                 "MAX_MODEL_BYTES", "PARTITION_PERIOD_DAYS", "MAX_NAMESPACE_FEATURES",
                 "MAX_CONTEXT_FEATURES", "MAX_STRING_LENGTH"}
_BOOL_KEYS = {"SESSION_COOKIE_SECURE", "BENCH_NOOP", "METRICS_PUBLIC"}


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
SQLITE_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _coerce(key: str, raw: str) -> Any:
    """`raw` as the type of `key`; a value that is not one is a ConfigError naming the
    variable (a typo such as `ture` must not quietly mean false)."""
    if key in _INT_KEYS | _FLOAT_KEYS:
        return _number(key, raw)
    if key in _BOOL_KEYS:
        value = raw.strip().lower()
        if value not in _TRUE | _FALSE:
            raise ConfigError(f"TAILOR_{key}={raw!r}: expected true or false (or 1/0, "
                              "yes/no, on/off)")
        return value in _TRUE
    return raw


def _number(key: str, raw: str) -> int | float:
    """A count, size or duration: finite, not negative, and at least 1 for the sizes and
    counts where 0 would refuse every request (0 means "off" only where README says so)."""
    least = 1 if key in _AT_LEAST_ONE else 0
    kind = "a whole number" if key in _INT_KEYS else "a number"
    kind += " (seconds, without a unit: 1.5)" if key.endswith("_SECONDS") else ""
    try:
        value: int | float = int(raw) if key in _INT_KEYS else float(raw)
    except ValueError:
        raise ConfigError(f"TAILOR_{key}={raw!r} is not {kind}") from None
    if not math.isfinite(value) or value < least:
        raise ConfigError(f"TAILOR_{key}={raw!r}: expected {kind} of at least {least}")
    return value


def _check(settings: Mapping[str, Any]) -> None:
    """The settings whose values are words or specs, checked once at start rather than at
    the first connection or request."""
    level = str(settings["SQLITE_SYNCHRONOUS"])
    if level.upper() not in SQLITE_SYNCHRONOUS_LEVELS:
        raise ConfigError(f"TAILOR_SQLITE_SYNCHRONOUS={level!r}: expected one of "
                          f"{', '.join(SQLITE_SYNCHRONOUS_LEVELS)} (docs/operations.md)")
    for key in ("RATE_LIMIT_RANK", "RATE_LIMIT_REWARD"):
        try:
            Limit.parse(settings[key])
        except ValueError as exc:
            reason = str(exc).partition(": ")[2]  # without Limit's own "rate limit '...'"
            raise ConfigError(f"TAILOR_{key}={settings[key]!r}: {reason} "
                              "(docs/security.md)") from None


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read `TAILOR_<KEY>` for every known key, and `DATABASE_URL` as is."""
    found: dict[str, Any] = {}
    for key in DEFAULTS:
        raw = environ.get(f"TAILOR_{key}")
        if raw is not None:
            found[key] = _coerce(key, raw)
    if environ.get("DATABASE_URL"):
        found["DATABASE_URL"] = environ["DATABASE_URL"]
    return found


def default_database_url(environ: Mapping[str, str] = os.environ) -> str:
    """Where Tailor keeps its SQLite database when `DATABASE_URL` is not set.

    Run from a source checkout (`make run`, an editable install): `<checkout>/var/tailor.db`.
    Installed from a wheel: the per-user data directory, `$XDG_DATA_HOME/tailor/tailor.db`
    (by default `~/.local/share/tailor/tailor.db`). An absolute path either way, so that
    the CLI finds the same database from any directory.
    """
    if (CHECKOUT / "pyproject.toml").is_file():
        return f"sqlite:///{CHECKOUT / 'var' / 'tailor.db'}"
    data = environ.get("XDG_DATA_HOME", "")
    if not Path(data).is_absolute():  # unset, empty or relative: invalid, says the XDG spec
        data = str(Path("~/.local/share").expanduser())
    return f"sqlite:///{Path(data).resolve() / 'tailor' / 'tailor.db'}"


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    settings = dict(DEFAULTS)
    settings.update(from_environment(os.environ))
    settings.update(overrides or {})
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = default_database_url()
    _check(settings)
    return settings
