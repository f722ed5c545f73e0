"""The report broken down by one context field, and the action distribution of each arm.

Values are the field's ``top`` most frequent ones; the rest are pooled as ``(other)`` and
decisions without the field as ``(missing)``. Within each segment every arm is compared
with the control on the reward metric; the p-values are Holm-corrected over all segments
and arms together (many segments are many chances of a false positive). A segment has no
looks of its own: its sequential p-value is the always-valid one at the current look.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments.abstats import SequentialResult, compare
from experiments.reports import comparisons
from experiments.reports.sql import (
    EMPTY,
    MISSING,
    OTHER,
    Moments,
    Scope,
    reward_by_segment_action,
    top_values,
    units_by_segment,
    validate_field,
)
from experiments.reports.summaries import arm_row


def action_shares(counts: Mapping[tuple[str, str], int]) -> dict[str, dict[str, float]]:
    """Share of each chosen action per arm, most frequent first.

    Examples:
        >>> action_shares({("a", "x"): 3, ("a", "y"): 1})
        {'a': {'x': 0.75, 'y': 0.25}}
    """
    per_arm: dict[str, dict[str, int]] = {}
    for (arm, action), n in counts.items():
        per_arm.setdefault(arm, {})[action] = n
    return {arm: {a: n / sum(c.values()) for a, n in sorted(c.items(), key=lambda x: -x[1])}
            for arm, c in per_arm.items()}


def breakdown(session: Session, scope: Scope, field: str, top: int, arms: list[str],
              control: str, alpha: float) -> dict[str, Any]:
    """The ``segments`` section of the report for context field ``field``."""
    path = validate_field(field)
    values = top_values(session, scope, path, top)
    by_action = reward_by_segment_action(session, scope, path, values)
    units = units_by_segment(session, scope, path, values)
    cells: dict[str, dict[str, Moments]] = {}
    for (seg, arm, _), m in by_action.items():
        seg_cells = cells.setdefault(seg, {a: EMPTY for a in arms})
        seg_cells[arm] = seg_cells.get(arm, EMPTY) + m
    labels = [v for v in [*values, OTHER, MISSING] if v in cells]
    binary = sum((m for seg in cells.values() for m in seg.values()), EMPTY).binary
    family = [(seg, c) for seg in labels for c in _compare(cells[seg], control, alpha, binary)]
    serialized = comparisons.serialize([c for _, c in family], control, alpha)
    entries = []
    for seg in labels:
        arm_rows = {arm: arm_row(m.stats, units.get((seg, arm), 0), alpha, binary)
                    for arm, m in cells[seg].items()}
        counts = {(arm, a): m.stats.n for (s, arm, a), m in by_action.items() if s == seg}
        entries.append({
            "value": seg, "n": sum(r["n"] for r in arm_rows.values()), "arms": arm_rows,
            "comparisons": [row for (s, _), row in zip(family, serialized, strict=True)
                            if s == seg],
            "actions": action_shares(counts)})
    return {"field": field, "top": top, "binary": binary, "values": entries}


def _compare(arms: dict[str, Moments], control: str, alpha: float,
             binary: bool) -> list[comparisons.ArmComparison]:
    base = arms[control].stats
    found = []
    for arm, m in arms.items():
        if arm == control:
            continue
        r = compare(base, m.stats, binary=binary, alpha=alpha)
        seq = SequentialResult(r.p_value_sequential, r.ci_sequential, r.reason)
        found.append(comparisons.ArmComparison(arm, "reward", r, seq))
    return found
