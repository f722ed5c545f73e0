"""Sticky arm assignment: a unit hashes to the same arm of the same experiment, always."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def unit_position(experiment_key: str, unit: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of experiment and unit (stable across processes)."""
    digest = hashlib.sha256(f"{experiment_key}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_arm(experiment_key: str, unit: str, shares: Mapping[str, float]) -> str:
    """The arm whose cumulative share interval holds the unit's position.

    Arms are walked in their configured order; an arm of share 0 never receives a unit.

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
