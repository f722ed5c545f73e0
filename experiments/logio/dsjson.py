"""VW / Azure Personalizer decision-service JSON ("DSJson") for ``--cb_explore_adf``.

One decision per line (VW's ``--dsjson`` reader and Personalizer's log export)::

    {"_label_cost": -1, "_label_probability": 0.8, "_label_Action": 2, "_labelIndex": 1,
     "Timestamp": "2019-08-13T20:40:28.7880000Z", "Version": "1", "EventId": "13c3...",
     "a": [2, 1, 3], "p": [0.8, 0.1, 0.1],
     "c": {"User": {"tier": "pro"}, "_multi": [{"_tag": "news", ...}, {...}, {...}]}}

- ``_labelIndex`` is the 0-based position of the chosen action in ``c._multi``;
  ``_label_Action`` the same, 1-based. ``a`` lists actions (1-based) in ranking order,
  ``p`` their probabilities in that order, so ``p[0]`` is the chosen action's.
- ``_label_cost`` is the cost, minus the reward (VW minimises cost).
- ``_skipLearn: true`` marks a deferred decision that was never activated: not imported.

Import mapping: features of ``c`` (keys starting with ``_`` ignored) become the context;
objects are namespaces, arrays of objects merge into one namespace, deeper objects are
flattened to ``outer.inner`` keys, arrays of numbers become ``key[i]`` features. An
action's id is its ``_tag``, else its ``id`` feature, else its 1-based position.

Export mapping: the context's top level and namespaces are written as they are, except
lists of strings, which VW's JSON reader rejects: ``"tags": ["a", "b"]`` is written as
``"tags=a": 1, "tags=b": 1`` (so a re-import gives numeric features there). Each action is
``{"_tag": id, "id": id, **features}`` (the ``id`` feature lets VW learn per action).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bandits.learner import cost_from_reward
from experiments import clock
from experiments.logio import records
from experiments.logio.records import ActionChecker, LineError, LoggedRecord


def parse(obj: Any, line: int, checker: ActionChecker) -> LoggedRecord | None:
    """One DSJson object → a record (None for a never-activated ``_skipLearn`` line).

    Raises:
        LineError: Naming the line and the field at fault.
    """
    if not isinstance(obj, Mapping):
        raise LineError(line, "each line must be a JSON object")
    if obj.get("_skipLearn") is True:
        return None
    shared = obj.get("c")
    if not isinstance(shared, Mapping) or not isinstance(shared.get("_multi"), list):
        raise LineError(line, "not a cb_explore_adf decision: no c._multi action list")
    actions = checker.check([_action(a, i, line) for i, a in enumerate(shared["_multi"])], line)
    chosen = _chosen_index(obj, len(actions), line)
    propensity = _propensity(obj, line)
    pmf = _pmf(obj, len(actions), line)
    return LoggedRecord(
        event_id=records.event_id(obj.get("EventId"), line),
        timestamp=records.parse_timestamp(obj.get("Timestamp"), line),
        context=records.context(_features(shared, line), line),
        actions=actions,
        chosen_index=chosen,
        propensity=propensity,
        pmf=None if pmf is None else records.checked_pmf(pmf, chosen, propensity, line),
        reward=_reward(obj.get("_label_cost"), line),
    )


def _chosen_index(obj: Mapping[str, Any], count: int, line: int) -> int:
    index = obj.get("_labelIndex")
    if index is None and obj.get("_label_Action") is not None:
        index = _integer(obj["_label_Action"], line, "_label_Action") - 1
    if index is None and isinstance(obj.get("a"), list) and obj["a"]:
        index = _integer(obj["a"][0], line, "a[0]") - 1
    if index is None:
        raise LineError(line, "no chosen action (_labelIndex, _label_Action or a)")
    index = _integer(index, line, "_labelIndex")
    if not 0 <= index < count:
        raise LineError(line, f"chosen action index {index} outside the {count} actions")
    return index


def _integer(value: Any, line: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError(line, f"{name} must be an integer")
    return value


def _propensity(obj: Mapping[str, Any], line: int) -> float:
    value = obj.get("_label_probability")
    if value is None and isinstance(obj.get("p"), list) and obj["p"]:
        value = obj["p"][0]
    return records.probability(value, line, "_label_probability")


def _pmf(obj: Mapping[str, Any], count: int, line: int) -> list[float] | None:
    order, probs = obj.get("a"), obj.get("p")
    if not isinstance(order, list) or not isinstance(probs, list) or len(probs) != count:
        return None  # only the chosen propensity is known
    if len(order) != count or sorted(order) != list(range(1, count + 1)):
        raise LineError(line, f"a must list each of the {count} actions once (1-based)")
    pmf = [0.0] * count
    for position, probability in zip(order, probs, strict=True):
        pmf[position - 1] = probability
    return pmf


def _reward(cost: Any, line: int) -> float | None:
    value = records.reward(cost, line)
    return None if value is None else 0.0 - value


def _action(item: Any, index: int, line: int) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise LineError(line, f"c._multi[{index}] must be an object")
    tag, own_id = item.get("_tag"), item.get("id")
    action_id = tag if isinstance(tag, str) and tag else None
    if action_id is None and isinstance(own_id, str | int) and not isinstance(own_id, bool):
        action_id = str(own_id)
    features = _features(item, line)
    if action_id is not None and str(features.get("id")) == action_id:
        features.pop("id")
    return {"id": action_id or str(index + 1), "features": features}


def _features(values: Mapping[str, Any], line: int) -> dict[str, Any]:
    """VW JSON features → a Tailor context (namespaces one level deep)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, Mapping):
            out[key] = _flatten(value, "", line)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            merged: dict[str, Any] = {}
            for part in value:
                merged.update(_flatten(part, "", line))
            out[key] = merged
        elif isinstance(value, list) and value and not all(isinstance(v, str) for v in value):
            out[key] = _numbers(value, "", line, key)
        else:
            out[key] = value
    return out


def _flatten(values: Mapping[str, Any], prefix: str, line: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}.", line))
        elif isinstance(value, list) and not all(isinstance(v, str) for v in value):
            out.update(_numbers(value, name, line, name))
        else:
            out[name] = value
    return out


def _numbers(values: list[Any], prefix: str, line: int, field: str) -> dict[str, Any]:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise LineError(line, f"{field}: arrays must hold only strings, numbers or objects")
    return {f"{prefix}[{i}]" if prefix else str(i): v for i, v in enumerate(values)}


def render(*, event_id: str, timestamp: float, context: Mapping[str, Any],
           actions: list[Mapping[str, Any]], chosen_index: int, propensity: float,
           pmf: list[float | None] | None, reward: float,
           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A logged decision as a DSJson object VW's ``--dsjson`` reader accepts."""
    order = _ranking(pmf, chosen_index, len(actions))
    line: dict[str, Any] = {
        "_label_cost": cost_from_reward(reward), "_label_probability": propensity,
        "_label_Action": chosen_index + 1, "_labelIndex": chosen_index,
        "Timestamp": clock.iso(timestamp), "Version": "1", "EventId": event_id,
        "a": [i + 1 for i in order],
    }
    if pmf is not None and all(p is not None for p in pmf):
        line["p"] = [pmf[i] for i in order]
    multi = [_vw_action(a) for a in actions]
    line["c"] = {**_vw_features(context), "_multi": multi}
    if extra:
        line["_tailor"] = dict(extra)
    return line


def _ranking(pmf: list[float | None] | None, chosen: int, count: int) -> list[int]:
    known = pmf if pmf is not None and all(p is not None for p in pmf) else [0.0] * count
    return sorted(range(count), key=lambda i: (i != chosen, -(known[i] or 0.0), i))


def _vw_action(action: Mapping[str, Any]) -> dict[str, Any]:
    features = _vw_features(action.get("features") or {})
    head = {"_tag": action["id"]} if "id" in features else {"_tag": action["id"],
                                                             "id": action["id"]}
    return {**head, **features}


def _vw_features(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out[key] = _vw_features(value)
        elif isinstance(value, list | tuple):
            out.update({f"{key}={item}": 1 for item in value})
        elif value is not None:
            out[key] = value
    return out
