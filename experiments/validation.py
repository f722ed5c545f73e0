"""Validation and normalisation of an experiment's configuration (pure functions).

Every error names the offending field (`arms.bandit`, `reward.window_seconds`...), so a
client can show it next to the input that caused it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from bandits.exploration import ExplorationError, validate_learner
from bandits.features import NO_TYPES, FeatureError, FeatureTypes, action_line, feature_types
from experiments.analysis_config import validate_analysis
from experiments.assignment import stored_order
from experiments.errors import ValidationFailed
from experiments.limits import DEFAULT_LIMITS, ContextLimits, check_context

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
             "pii_fields", "pii_mode", "status", "alpha", "description"}
TOP_LEVEL |= {"service"}  # operational settings (Personalizer's service configuration)
TOP_LEVEL |= {"analysis"}  # the A/B report's analysis settings (experiments.analysis_config)
PATCHABLE = {"name", "description", "status", "arms", "learner", "actions", "alpha",
             "pii_fields", "pii_mode"}
PATCHABLE |= {"analysis", "service"}

# The known keys of every object of an experiment body that Tailor names (user-named maps
# such as reward.events, arms and an action's features are not here). A key not listed is
# refused with a suggestion. Adding a configuration key means adding it to this table
# (learner.params is checked per exploration preset by bandits.exploration).
KNOWN_KEYS: dict[str, AbstractSet[str]] = {
    "": TOP_LEVEL,
    "profile": frozenset({"namespace", "max_age_seconds"}),
    "reward": frozenset({"events", "aggregation", "window_seconds", "default"}),
    "learner": frozenset({"exploration", "params", "mode"}),
    "champion": frozenset({"type", "action_id", "version"}),
    "actions[]": frozenset({"id", "features"}),
}

# Unit profiles and declared feature kinds (experiments/profiles.py, bandits/features.py).
# feature_types is fixed at registration: it gives logged decisions their meaning.
TOP_LEVEL |= {"profile", "feature_types"}
PATCHABLE |= {"profile"}
MAX_PROFILE_AGE_SECONDS = 366 * 24 * 3600

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


def validate_actions(actions: Any, field: str = "actions",
                     types: FeatureTypes = NO_TYPES,
                     limits: ContextLimits | None = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """A list of `{"id", "features"}` with unique ids and encodable features, each within
    `limits` (None: the caller checked sizes)."""
    if not isinstance(actions, list):
        raise fail(field, "must be a list of actions")
    seen: set[str] = set()
    result = []
    for index, action in enumerate(actions):
        where = f"{field}[{index}]"
        action = _mapping(action, where)
        for name in action:
            if name not in KNOWN_KEYS["actions[]"]:
                raise unknown_field(f"{where}.{name}", name, KNOWN_KEYS["actions[]"])
        action_id = _string(action.get("id"), f"{where}.id")
        if action_id in seen:
            raise fail(f"{where}.id", f"duplicate action id {action_id!r}")
        seen.add(action_id)
        features = _mapping(action.get("features", {}) or {}, f"{where}.features")
        try:
            action_line(action_id, features, types=types)
        except FeatureError as exc:
            raise fail(f"{where}.features", str(exc)) from exc
        if limits is not None:
            check_context(features, f"{where}.features", limits)
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


def value_events(reward: Mapping[str, Any]) -> list[str]:
    """The event types whose reward is the value sent (`"purchase": "value"`)."""
    return [name for name, rule in reward["events"].items() if rule == "value"]


def validate_learner_config(learner: Any, reward: Mapping[str, Any], *,
                            require_range: bool = False) -> dict[str, Any]:
    """Learner settings; `reward_range` defaults to what the reward rule can produce,
    because VW's RegCB/SquareCB clip costs to it.

    Args:
        learner: the body's `learner`.
        reward: the validated reward rule.
        require_range: refuse a rule with `"value"` events and no explicit
            `learner.params.reward_range` (the default [0, 1] would clip an order amount).
    """
    learner = _mapping(learner, "learner")
    exploration = learner.get("exploration", DEFAULT_LEARNER["exploration"])
    params = learner.get("params", {} if "exploration" in learner else DEFAULT_LEARNER["params"])
    params = dict(_mapping(params, "learner.params"))
    if "reward_range" not in params and (implied := implied_reward_range(reward)):
        params["reward_range"] = implied
    try:
        normalized = validate_learner(exploration, params)
    except ExplorationError as exc:
        error = fail(exc.field, exc.reason)
        if exc.suggestion:
            error.details[0]["suggestion"] = exc.suggestion
        raise error from exc
    mode = learner.get("mode", "online")
    if mode not in MODES:
        raise fail("learner.mode", f"must be one of {', '.join(MODES)}")
    if require_range and "reward_range" not in params and (valued := value_events(reward)):
        raise fail("learner.params.reward_range", (
            f"required: reward.events.{valued[0]} takes the value sent, so say which range "
            "a decision's reward can take, e.g. [0, 500] for order amounts up to 500; "
            "learning clips rewards to it (the default [0, 1] would learn a 50.00 "
            "purchase as 1)"))
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


def unknown_field(field: str, key: Any, known: Iterable[str]) -> ValidationFailed:
    """`field: unknown field; did you mean `x`?` (difflib's closest known key, if any)."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else \
        f"; known fields: {', '.join(sorted(known))}"
    error = fail(field, "unknown field" + hint)
    if close:
        error.details[0]["suggestion"] = close[0]
    return error


def _objects(payload: Mapping[str, Any], path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The objects at a KNOWN_KEYS path ("reward", "actions[]", "a.b[]"), each with the
    prefix that names its keys ("actions[0].")."""
    found: list[tuple[str, Any]] = [("", payload)]
    for segment in filter(None, path.split(".")):
        name, many = segment.removesuffix("[]"), segment.endswith("[]")
        step: list[tuple[str, Any]] = []
        for prefix, obj in found:
            value = obj.get(name) if isinstance(obj, Mapping) else None
            if many and isinstance(value, list):
                step += [(f"{prefix}{name}[{i}].", item) for i, item in enumerate(value)]
            elif not many:
                step.append((f"{prefix}{name}.", value))
        found = step
    return [(prefix, obj) for prefix, obj in found if isinstance(obj, Mapping)]


def check_known_keys(payload: Mapping[str, Any], skip: AbstractSet[str] = frozenset()) -> None:
    """Refuse the first key that no KNOWN_KEYS entry allows, naming its path.

    Args:
        payload: an experiment body (or a PATCH body).
        skip: levels not checked here (PATCH checks its own top level).

    Raises:
        ValidationFailed: `reward.window_second: unknown field; did you mean ...`.
    """
    for level, known in KNOWN_KEYS.items():
        if level in skip:
            continue
        for prefix, obj in _objects(payload, level):
            for key in sorted(map(str, obj)):
                if key not in known:
                    raise unknown_field(prefix + key, key, known)


def validate_new(payload: Any) -> dict[str, Any]:
    """Normalise a registration body into the stored configuration (defaults filled in)."""
    payload = _mapping(payload, "body")
    check_known_keys(payload)
    key = payload.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise fail("key", "must match [a-z0-9][a-z0-9_-]{0,63}")
    config: dict[str, Any] = {"key": key}
    _fill(config, payload, new=True)
    config["arms"] = stored_order(config["arms"])
    return config


def validate_patch(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """The configuration after applying `patch` to `current`."""
    patch = _mapping(patch, "body")
    for field in sorted(set(patch) - PATCHABLE):
        if field in TOP_LEVEL:
            raise fail(field, "cannot be changed after registration")
        raise unknown_field(field, field, PATCHABLE)
    check_known_keys(patch, skip={""})
    merged = {**current, **patch}
    if isinstance(patch.get("learner"), Mapping):
        merged["learner"] = _keep_reward_range(patch["learner"], current)
    config: dict[str, Any] = {"key": current["key"]}
    _fill(config, merged, new=False)
    config["arms"] = stored_order(config["arms"], current.get("arms"))
    return config


def _keep_reward_range(learner: Mapping[str, Any], current: Mapping[str, Any]) -> Any:
    """A patched learner without `params.reward_range` keeps the current one (the reward
    rule cannot change, so neither does the range its rewards take)."""
    params = learner.get("params", {} if "exploration" in learner
                         else DEFAULT_LEARNER["params"])
    kept = current.get("learner", {}).get("params", {}).get("reward_range")
    if not isinstance(params, Mapping) or "reward_range" in params or kept is None:
        return learner
    return {**learner, "params": {**params, "reward_range": kept}}


def validate_replacement(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration after replacing whole sections (any field but `key`): for
    adapters that own more of an experiment than a PATCH may change (Personalizer's
    service configuration changes `reward` and `champion`)."""
    if "key" in changes:
        raise fail("key", "cannot be changed after registration")
    _unknown(changes, TOP_LEVEL)
    check_known_keys(changes, skip={""})
    config: dict[str, Any] = {"key": current["key"]}
    _fill(config, {**current, **changes}, new=False)
    config["arms"] = stored_order(config["arms"], current.get("arms"))
    return config


def _unknown(payload: Mapping[str, Any], allowed: AbstractSet[str], prefix: str = "") -> None:
    for key in sorted(map(str, payload)):
        if key not in allowed:
            raise unknown_field(prefix + key, key, allowed)


def _fill(config: dict[str, Any], src: Mapping[str, Any], *, new: bool) -> None:
    config["name"] = _string(src.get("name", config["key"]), "name", 200)
    config["description"] = src.get("description") if src.get("description") is None \
        else _string(src["description"], "description", 2000)
    types = _feature_types(config, src)
    actions = src.get("actions")
    config["actions"] = None if actions is None else validate_actions(actions, types=types)
    catalog = None if config["actions"] is None else {a["id"] for a in config["actions"]}
    config["reward"] = validate_reward(src.get("reward", DEFAULT_REWARD))
    config["learner"] = validate_learner_config(src.get("learner", DEFAULT_LEARNER),
                                                config["reward"],
                                                require_range=new and "reward" in src)
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
    if src.get("analysis") is not None:
        config["analysis"] = validate_analysis(src["analysis"], config["reward"])
    if src.get("profile") is not None:
        config["profile"] = validate_profile_setting(src["profile"])
    if src.get("service") is not None:
        config["service"] = validate_service(src["service"])


def changed_fields(current: Mapping[str, Any], new: Mapping[str, Any],
                   names: Iterable[str]) -> list[str]:
    """The top-level fields among `names` whose stored value differs (sorted)."""
    return sorted(k for k in names if current.get(k) != new.get(k))


def notes(payload: Mapping[str, Any], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What registration decided for the team, said in the answer: where the learner's
    `reward_range` (the bounds learning clips rewards to) came from."""
    given = payload.get("learner", {}) if isinstance(payload, Mapping) else {}
    params = given.get("params") if isinstance(given, Mapping) else None
    low, high = config["learner"]["params"]["reward_range"]
    if isinstance(params, Mapping) and "reward_range" in params:
        source = "as given"
    elif implied_reward_range(config["reward"]) is not None:
        source = "derived from the reward rule (the most its events can add up to)"
    else:
        source = ("the default: rewards are taken as sent, and learning clips them to this "
                  "range; set learner.params.reward_range if they can fall outside it")
    return [{"code": "reward_range", "field": "learner.params.reward_range",
             "message": f"learning assumes rewards in [{low:g}, {high:g}]: {source}"}]


def _feature_types(config: dict[str, Any], src: Mapping[str, Any]) -> FeatureTypes:
    """`feature_types` (kept only when given), parsed for the action catalog's check."""
    declared = src.get("feature_types")
    if declared is None:
        return NO_TYPES
    try:
        types = feature_types(declared)
    except FeatureError as exc:
        raise fail(exc.path, exc.reason) from exc
    config["feature_types"] = dict(declared)
    return types


def validate_profile_setting(setting: Any) -> dict[str, Any]:
    """`{"namespace": "profile", "max_age_seconds": 86400}`: rank merges the unit's
    profile into the context under `namespace` when it is at most that old."""
    setting = _mapping(setting, "profile")
    unknown = sorted(set(setting) - {"namespace", "max_age_seconds"})
    if unknown:
        raise fail(f"profile.{unknown[0]}", "unknown field (namespace, max_age_seconds)")
    namespace = _string(setting.get("namespace", "profile"), "profile.namespace", 64)
    if namespace == "action" or "." in namespace:
        raise fail("profile.namespace", "a context key without dots, other than 'action'")
    age = _number(setting.get("max_age_seconds", 86400), "profile.max_age_seconds")
    if not 0 < age <= MAX_PROFILE_AGE_SECONDS:
        raise fail("profile.max_age_seconds",
                   f"must be more than 0 and at most {MAX_PROFILE_AGE_SECONDS}")
    return {"namespace": namespace, "max_age_seconds": age}


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
    _unknown(service, set(SERVICE_NUMBERS) | set(SERVICE_STORED) | set(SERVICE_NAMES),
             "service.")
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
