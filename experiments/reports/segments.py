"""The report broken down by one context field, and the action distribution of each arm.

Segments are of units: a unit belongs to the segment (and arm) of its first decision, so
a unit whose context changes is still counted once. Values are the field's ``top`` most
frequent ones; the rest are pooled as ``(other)`` and units whose first decision lacks the
field as ``(missing)``. Within each segment every arm is compared with the control on the
reward per decision (delta method over the segment's units); the p-values are corrected
(Holm or Benjamini–Hochberg, the report's choice) over all segment rows together (many
segments are many chances of a false positive). A segment has no looks of its own: its
sequential p-value is the always-valid one at the current look.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments.abstats import RatioStats, SequentialResult
from experiments.abstats.multitest import Adjustment
from experiments.reports import comparisons
from experiments.reports.sql import (
    MISSING,
    OTHER,
    Scope,
    segment_actions,
    validate_field,
)
from experiments.reports.summaries import arm_row
from experiments.reports.units import REWARD_COLUMN, Request, unit_cells


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
              control: str, alpha: float, adjustment: Adjustment = "holm"
              ) -> tuple[dict[str, Any], dict[tuple[str, str], int]]:
    """The ``segments`` section of the report for context field ``field``, and decisions
    per (arm, chosen action) over all segments (the arms' action shares)."""
    path = validate_field(field)
    values, by_action = segment_actions(session, scope, path, top)
    found = unit_cells(session, scope, Request(by_hour=False, segment=(path, values)))
    cells: dict[str, dict[str, RatioStats]] = {}
    binary = True
    for (arm, seg), cell in found.items():
        cells.setdefault(seg, {a: RatioStats.empty() for a in arms})[arm] = \
            cell.metrics[REWARD_COLUMN].stats()
        binary = binary and cell.decision_moments[REWARD_COLUMN].binary
    binary = binary and bool(found)
    labels = [v for v in [*values, OTHER, MISSING] if v in cells]
    family = [(seg, c) for seg in labels for c in _compare(cells[seg], control, alpha, binary)]
    serialized = comparisons.serialize([c for _, c in family], control, alpha, adjustment)
    entries = []
    for seg in labels:
        arm_rows = {arm: arm_row(stats, alpha, binary) for arm, stats in cells[seg].items()}
        counts = {(arm, a): n for (s, arm, a), n in by_action.items() if s == seg}
        entries.append({
            "value": seg, "n": sum(r["n"] for r in arm_rows.values()),
            "units": sum(r["units"] for r in arm_rows.values()), "arms": arm_rows,
            "comparisons": [row for (s, _), row in zip(family, serialized, strict=True)
                            if s == seg],
            "actions": action_shares(counts)})
    totals: dict[tuple[str, str], int] = {}
    for (_, arm, action), n in sorted(by_action.items(), key=lambda kv: kv[0][1:]):
        totals[(arm, action)] = totals.get((arm, action), 0) + n
    return {"field": field, "top": top, "binary": binary, "adjustment": adjustment,
            "values": entries}, totals


def _compare(arms: dict[str, RatioStats], control: str, alpha: float,
             binary: bool) -> list[comparisons.ArmComparison]:
    base = arms.get(control, RatioStats.empty())
    found = []
    for arm, stats in arms.items():
        if arm == control:
            continue
        r = comparisons.compare_units(base, stats, binary, alpha)
        seq = SequentialResult(r.p_value_sequential, r.ci_sequential, r.reason)
        found.append(comparisons.ArmComparison(arm, "reward", r, seq))
    return found
