"""Cost of the security layer on the rank path: the PII guard and the rate limiter.

    .venv/bin/python bench/bench_security.py

Prints microseconds per call (median of 5 runs). The guard runs once per rank call; the
limiter once per rank or reward call when a limit is configured.
"""

from __future__ import annotations

import os
import statistics
import timeit

from app.ratelimit import Limit, RateLimiter
from experiments import pii

SALT = "s" * 64
CONFIG = {"pii_fields": ["email"], "pii_mode": "hash", "unit_field": "user_id"}


def context(fields: int) -> dict:
    """A realistic mix: categorical strings, numbers, booleans, a namespace, a list."""
    ctx: dict = {"user_id": "u-123", "hour": 14, "mobile": True,
                 "user": {"segment": "new", "country": "DE", "tags": ["a", "b"]}}
    for i in range(fields - len(ctx) - 2):
        ctx[f"f{i}"] = f"value-{i}" if i % 2 else i * 1.5
    return ctx


def per_call_us(func, number: int) -> float:
    runs = [timeit.timeit(func, number=number) / number * 1e6 for _ in range(5)]
    return statistics.median(runs)


def main() -> None:
    rows = []
    for fields in (10, 30, 100):
        ctx = context(fields)
        rows.append((f"pii.guard, {fields}-field context",
                     per_call_us(lambda c=ctx: pii.guard(c, "u-123", CONFIG, SALT), 2000)))
    ctx = context(10)
    ctx["note"] = "write to jane@example.com"
    rows.append(("pii.guard, 10 fields + 1 e-mail found",
                 per_call_us(lambda: pii.guard(ctx, "u-123", CONFIG, SALT), 2000)))
    limiter = RateLimiter({"rank": Limit(1e9, 1e9)})
    rows.append(("RateLimiter.check (limit on)",
                 per_call_us(lambda: limiter.check("key", "rank"), 20000)))
    off = RateLimiter({"rank": None})
    rows.append(("RateLimiter.check (limit off)",
                 per_call_us(lambda: off.check("key", "rank"), 20000)))
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"| {'operation':<40} | {'µs per call':>11} |")
    print(f"| {'-' * 40} | {'-' * 11}:|")
    for name, value in rows:
        print(f"| {name:<40} | {value:>11.1f} |")


if __name__ == "__main__":
    main()
