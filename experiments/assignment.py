"""Sticky arm assignment: a unit hashes to the same arm of the same experiment, always."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TypeVar

V = TypeVar("V")


def unit_position(experiment_key: str, unit: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of experiment and unit (stable across processes)."""
    digest = hashlib.sha256(f"{experiment_key}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_arm(experiment_key: str, unit: str, shares: Mapping[str, float]) -> str:
    """The arm whose cumulative share interval holds the unit's position.

    Arms are walked in their stored order (see `stored_order`); an arm of share 0 never
    receives a unit.

    >>> assign_arm("exp", "u-1", {"champion": 0.0, "bandit": 1.0})
    'bandit'
    """
    position = unit_position(experiment_key, unit)
    cumulative = 0.0
    last = None
    for arm, share in shares.items():
        if share <= 0:
            continue
        cumulative += share
        last = arm
        if position < cumulative:
            return arm
    if last is None:
        raise ValueError("no arm has a positive share")
    return last  # float rounding left the position just above the last bound


def _jsonb_key(name: str) -> tuple[int, bytes]:
    return len(name.encode()), name.encode()


def stored_order(arms: Mapping[str, V], current: Mapping[str, object] | None = None
                 ) -> dict[str, V]:
    """The order in which an experiment's arms are stored, and so walked by `assign_arm`.

    PostgreSQL stores the configuration as jsonb, which orders an object's keys by length,
    then bytewise; SQLite kept them in the order the client sent. So one unit could land
    in different arms on the two backends, and on SQLite a PATCH that only reordered the
    arms moved most units. A new experiment's arms are stored in jsonb's order on both
    (nothing changes on PostgreSQL). A PATCH keeps the existing arms where they were when
    they are in that order already; an experiment registered on SQLite before this rule
    keeps its own order (its units stay in their arms), new arms going last.

    >>> list(stored_order({"champion": 0.5, "bandit": 0.5}))
    ['bandit', 'champion']
    >>> list(stored_order({"bandit": 0.2, "champion": 0.8}, {"champion": 0.5, "bandit": 0.5}))
    ['champion', 'bandit']
    """
    names = list(current or ())
    if names == sorted(names, key=_jsonb_key):  # new, or stored in jsonb's order already
        return dict(sorted(arms.items(), key=lambda item: _jsonb_key(item[0])))
    kept = [name for name in names if name in arms]
    return {name: arms[name] for name in kept + [n for n in arms if n not in kept]}
