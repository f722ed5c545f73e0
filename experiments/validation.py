"""Validation and normalisation of an experiment's configuration (pure functions).

Every error names the offending field (`arms.bandit`, `reward.window_seconds`...), so a
client can show it next to the input that caused it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from bandits.exploration import ExplorationError, validate_learner
from bandits.features import FeatureError, action_line
from experiments.errors import ValidationFailed

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
STATUSES = ("draft", "running", "paused", "stopped")
# The reward functions of Microsoft's open-source learning loop (experiments.rewards).
AGGREGATIONS = ("sum", "earliest", "max", "min", "average", "median")
# logging: the champion decides and nothing is learned (Personalizer's LoggingOnly).
MODES = ("online", "apprentice", "logging")
PII_MODES = ("hash", "reject")
ARM_NAMES = ("champion", "bandit")
MAX_WINDOW_SECONDS = 30 * 24 * 3600
TOP_LEVEL = {"key", "name", "actions", "reward", "learner", "champion", "arms", "unit_field",
             "pii_fields", "pii_mode", "status", "alpha", "description", "service"}
PATCHABLE = {"name", "description", "status", "arms", "learner", "actions", "alpha",
             "pii_fields", "pii_mode", "service"}

DEFAULT_REWARD = {"events": {"reward": "value"}, "aggregation": "sum",
                  "window_seconds": 600, "default": 0.0}
DEFAULT_LEARNER = {"exploration": "epsilon", "params": {"epsilon": 0.2}, "mode": "online"}


def fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.field(field, message)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(field, "must be a finite number")
    return float(value)


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(field, "must be an object")
    return value


def _string(value: Any, field: str, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise fail(field, f"must be a non-empty string of at most {max_len} characters")
    return value


def validate_actions(actions: Any, field: str = "actions") -> list[dict[str, Any]]:
    """A list of `{"id", "features"}` with unique ids and encodable features."""
    if not isinstance(actions, list):
        raise fail(field, "must be a list of actions")
    seen: set[str] = set()
    result = []
    for index, action in enumerate(actions):
        where = f"{field}[{index}]"
        action = _mapping(action, where)
        action_id = _string(action.get("id"), f"{where}.id")
        if action_id in seen:
            raise fail(f"{where}.id", f"duplicate action id {action_id!r}")
        seen.add(action_id)
        features = _mapping(action.get("features", {}) or {}, f"{where}.features")
        try:
            action_line(action_id, features)
        except FeatureError as exc:
            raise fail(f"{where}.features", str(exc)) from exc
        result.append({"id": action_id, "features": dict(features)})
    return result


def validate_reward(reward: Any) -> dict[str, Any]:
    reward = _mapping(reward, "reward")
    events = _mapping(reward.get("events", DEFAULT_REWARD["events"]), "reward.events")
    if not events:
        raise fail("reward.events", "must name at least one event type")
    rules: dict[str, Any] = {}
    for name, rule in events.items():
        _string(name, "reward.events", 64)
        rules[name] = "value" if rule == "value" else _number(rule, f"reward.events.{name}")
    aggregation = reward.get("aggregation", "sum")
    if aggregation not in AGGREGATIONS:
        raise fail("reward.aggregation", f"must be one of {', '.join(AGGREGATIONS)}")
    window = _number(reward.get("window_seconds", 600), "reward.window_seconds")
    if not 0 <= window <= MAX_WINDOW_SECONDS:
        raise fail("reward.window_seconds", f"must be between 0 and {MAX_WINDOW_SECONDS}")
    default = _number(reward.get("default", 0.0), "reward.default")
    return {"events": rules, "aggregation": aggregation, "window_seconds": window,
            "default": default}


def implied_reward_range(reward: Mapping[str, Any]) -> list[float] | None:
    """The range a decision's reward can take under a rule of fixed values (None when an
    event carries its own value, e.g. an order amount: then the team must say)."""
    values = list(reward["events"].values())
    if any(v == "value" for v in values):
        return None
    reachable = sum(v for v in values if v > 0) if reward["aggregation"] == "sum" \
        else max(values)
    low = min(0.0, reward["default"], *values)
    high = max(reward["default"], reachable)
    return [low, high] if high > low else None


def validate_learner_config(learner: Any, reward: Mapping[str, Any]) -> dict[str, Any]:
    """Learner settings; `reward_range` defaults to what the reward rule can produce,
    because VW's RegCB/SquareCB clip costs to it."""
    learner = _mapping(learner, "learner")
    unknown = set(learner) - {"exploration", "params", "mode"}
    if unknown:
        raise fail(f"learner.{sorted(unknown)[0]}", "unknown field")
    exploration = learner.get("exploration", DEFAULT_LEARNER["exploration"])
    params = learner.get("params", {} if "exploration" in learner else DEFAULT_LEARNER["params"])
    params = dict(_mapping(params, "learner.params"))
    if "reward_range" not in params and (implied := implied_reward_range(reward)):
        params["reward_range"] = implied
    try:
        normalized = validate_learner(exploration, params)
    except ExplorationError as exc:
        raise fail(getattr(exc, "field", "learner"), str(exc)) from exc
    mode = learner.get("mode", "online")
    if mode not in MODES:
        raise fail("learner.mode", f"must be one of {', '.join(MODES)}")
    return {"exploration": exploration, "params": normalized, "mode": mode}


def validate_champion(champion: Any, catalog_ids: set[str] | None) -> dict[str, Any]:
    champion = _mapping(champion, "champion")
    kind = champion.get("type")
    if kind == "uniform":
        return {"type": "uniform"}
    if kind == "baseline":  # the first offered action (Personalizer's baseline)
        return {"type": "baseline"}
    if kind == "fixed":
        action_id = _string(champion.get("action_id"), "champion.action_id")
        if catalog_ids is not None and action_id not in catalog_ids:
            raise fail("champion.action_id", f"{action_id!r} is not in the action catalog")
        return {"type": "fixed", "action_id": action_id}
    if kind == "model":
        version = champion.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise fail("champion.version", "must be a model version (integer >= 1)")
        return {"type": "model", "version": version}
    raise fail("champion.type", "must be one of fixed, uniform, baseline, model")


def validate_arms(arms: Any, catalog_ids: set[str] | None) -> dict[str, float]:
    """Traffic shares by arm; each arm is `champion`, `bandit` or a policy spec."""
    arms = _mapping(arms, "arms")
    if not arms:
        raise fail("arms", "must name at least one arm")
    shares: dict[str, float] = {}
    for name, share in arms.items():
        validate_arm_name(name, catalog_ids)
        value = _number(share, f"arms.{name}")
        if not 0.0 <= value <= 1.0:
            raise fail(f"arms.{name}", "must be between 0 and 1")
        shares[name] = value
    total = sum(shares.values())
    if abs(total - 1.0) > 1e-9:
        raise fail("arms", f"shares must sum to 1 (they sum to {total:g})")
    return shares


def validate_arm_name(name: str, catalog_ids: set[str] | None) -> None:
    if name in ARM_NAMES or name == "uniform":
        return
    if name.startswith("fixed:") and len(name) > 6:
        if catalog_ids is not None and name[6:] not in catalog_ids:
            raise fail(f"arms.{name}", f"{name[6:]!r} is not in the action catalog")
        return
    if name.startswith("model:") and name[6:].isdigit():
        return
    raise fail(f"arms.{name}", "an arm is champion, bandit, uniform, fixed:<action> or model:<n>")


def validate_pii(fields: Any, mode: Any) -> tuple[list[str], str]:
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise fail("pii_fields", "must be a list of field names (dots for nested fields)")
    if mode not in PII_MODES:
        raise fail("pii_mode", f"must be one of {', '.join(PII_MODES)}")
    return list(fields), mode


def _alpha(value: Any) -> float:
    alpha = _number(value, "alpha")
    if not 0.0 < alpha < 0.5:
        raise fail("alpha", "must be between 0 and 0.5")
    return alpha


def _unknown(payload: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise fail(unknown[0], "unknown field")


def validate_new(payload: Any) -> dict[str, Any]:
    """Normalise a registration body into the stored configuration (defaults filled in)."""
    payload = _mapping(payload, "body")
    _unknown(payload, TOP_LEVEL)
    key = payload.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise fail("key", "must match [a-z0-9][a-z0-9_-]{0,63}")
    config: dict[str, Any] = {"key": key}
    _fill(config, payload, new=True)
    return config


def validate_patch(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """The configuration after applying `patch` to `current`."""
    patch = _mapping(patch, "body")
    for field in sorted(set(patch) - PATCHABLE):
        if field in TOP_LEVEL:
            raise fail(field, "cannot be changed after registration")
        raise fail(field, "unknown field")
    merged = {**current, **patch}
    config: dict[str, Any] = {"key": current["key"]}
    _fill(config, merged, new=False)
    return config


def validate_replacement(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration after replacing whole sections (any field but `key`): for
    adapters that own more of an experiment than a PATCH may change (Personalizer's
    service configuration changes `reward` and `champion`)."""
    if "key" in changes:
        raise fail("key", "cannot be changed after registration")
    _unknown(changes, TOP_LEVEL)
    config: dict[str, Any] = {"key": current["key"]}
    _fill(config, {**current, **changes}, new=False)
    return config


def _fill(config: dict[str, Any], src: Mapping[str, Any], *, new: bool) -> None:
    config["name"] = _string(src.get("name", config["key"]), "name", 200)
    config["description"] = src.get("description") if src.get("description") is None \
        else _string(src["description"], "description", 2000)
    actions = src.get("actions")
    config["actions"] = None if actions is None else validate_actions(actions)
    catalog = None if config["actions"] is None else {a["id"] for a in config["actions"]}
    config["reward"] = validate_reward(src.get("reward", DEFAULT_REWARD))
    config["learner"] = validate_learner_config(src.get("learner", DEFAULT_LEARNER),
                                                config["reward"])
    config["champion"] = validate_champion(src.get("champion", {"type": "uniform"}), catalog)
    config["arms"] = validate_arms(src.get("arms", {"bandit": 1.0}), catalog)
    unit_field = src.get("unit_field")
    config["unit_field"] = None if unit_field is None else _string(unit_field, "unit_field", 128)
    config["pii_fields"], config["pii_mode"] = validate_pii(
        src.get("pii_fields", []), src.get("pii_mode", "hash"))
    status = src.get("status", "running")
    if status not in STATUSES:
        raise fail("status", f"must be one of {', '.join(STATUSES)}")
    config["status"] = status
    config["alpha"] = _alpha(src.get("alpha", 0.05))
    if src.get("service") is not None:
        config["service"] = validate_service(src["service"])


# Operational settings (Personalizer's service configuration): snapshot cadence, log
# retention, and settings stored for a migrating team's round trip.
SERVICE_NUMBERS = {"model_export_seconds": (1.0, 30 * 86400.0),
                   "log_retention_days": (-1, 100 * 365), "model_retrain_days": (0, 100 * 365)}
SERVICE_STORED = ("auto_optimization", "log_mirror")  # objects, kept as sent
SERVICE_NAMES = ("policy_name",)  # strings


def validate_service(service: Any) -> dict[str, Any]:
    """`service`: `model_export_seconds` (snapshot cadence), `log_retention_days` (-1:
    forever), `model_retrain_days`, `auto_optimization`/`log_mirror` (stored as sent) and
    `policy_name` (the name of the learning policy set through Personalizer's API)."""
    service = _mapping(service, "service")
    _unknown(service, set(SERVICE_NUMBERS) | set(SERVICE_STORED) | set(SERVICE_NAMES))
    result: dict[str, Any] = {}
    for name, (low, high) in SERVICE_NUMBERS.items():
        if service.get(name) is None:
            continue
        value = _number(service[name], f"service.{name}")
        if not low <= value <= high or (isinstance(low, int) and not value.is_integer()):
            raise fail(f"service.{name}", f"must be between {low} and {high}")
        result[name] = int(value) if isinstance(low, int) else value
    for name in SERVICE_STORED:
        if service.get(name) is not None:
            result[name] = dict(_mapping(service[name], f"service.{name}"))
    for name in SERVICE_NAMES:
        if service.get(name) is not None:
            result[name] = _string(service[name], f"service.{name}")
    return result
