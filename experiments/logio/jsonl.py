"""Tailor's JSON Lines log format (the Open Bandit Dataset sample uses it).

One decision per line::

    {"event_id": "obd-men-0", "timestamp": "2019-11-24 00:03:13.442536+00:00",
     "context": {"user_feature_0": "cef3...", "position": 3},
     "actions": ["0", "1", "2"] or [{"id": "0", "features": {...}}, ...],
     "chosen": "1", "propensity": 0.0294, "reward": 0.0}

Optional: ``chosen_index`` instead of ``chosen``; ``pmf``, the logging policy's full
distribution, as a list aligned with ``actions`` or an object ``{action_id: p}`` (missing
ids are 0); ``reward`` null or absent (the experiment's default reward applies);
``timestamp`` as epoch seconds. Other fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments.logio import records
from experiments.logio.records import ActionChecker, LineError, LoggedRecord


def parse(obj: Any, line: int, checker: ActionChecker) -> LoggedRecord:
    """One JSON Lines object → a record.

    Raises:
        LineError: Naming the line and the field at fault.
    """
    if not isinstance(obj, Mapping):
        raise LineError(line, "each line must be a JSON object")
    actions = checker.check(obj.get("actions"), line)
    chosen = _chosen_index(obj, actions, line)
    propensity = records.probability(obj.get("propensity"), line)
    pmf = _pmf(obj.get("pmf"), actions, line)
    return LoggedRecord(
        event_id=records.event_id(obj.get("event_id"), line),
        timestamp=records.parse_timestamp(obj.get("timestamp"), line),
        context=records.context(obj.get("context"), line),
        actions=actions,
        chosen_index=chosen,
        propensity=propensity,
        pmf=None if pmf is None else records.checked_pmf(pmf, chosen, propensity, line),
        reward=records.reward(obj.get("reward"), line),
    )


def _chosen_index(obj: Mapping[str, Any], actions: list[dict[str, Any]], line: int) -> int:
    if "chosen_index" in obj and "chosen" not in obj:
        index = obj["chosen_index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(actions):
            raise LineError(line, f"chosen_index must be in [0, {len(actions)})")
        return index
    chosen = obj.get("chosen")
    if isinstance(chosen, int) and not isinstance(chosen, bool):
        chosen = str(chosen)
    for index, action in enumerate(actions):
        if action["id"] == chosen:
            return index
    raise LineError(line, f"chosen {chosen!r} is not one of the offered actions")


def _pmf(value: Any, actions: list[dict[str, Any]], line: int) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != len(actions):
            raise LineError(line, f"pmf has {len(value)} entries for {len(actions)} actions")
        return value
    if not isinstance(value, Mapping):
        raise LineError(line, "pmf must be a list aligned with actions or {action_id: p}")
    ids = {a["id"] for a in actions}
    unknown = sorted(set(value) - ids)
    if unknown:
        raise LineError(line, f"pmf names action {unknown[0]!r}, which is not offered")
    return [value.get(a["id"], 0.0) for a in actions]
