"""`configurations/service` (GET, PUT): Personalizer's service configuration, mapped onto the
experiment (every change is a new experiment version, kept in its history).

| Personalizer | Tailor |
| --- | --- |
| rewardWaitTime (ISO 8601 duration, or hh:mm:ss) | reward.window_seconds |
| defaultReward | reward.default |
| rewardAggregation | reward.aggregation (earliest, sum, average, median, min, max) |
| explorationPercentage | learner epsilon (a change sets the epsilon-greedy preset) |
| learningMode Online / Apprentice / LoggingOnly | learner.mode online / apprentice / logging |
| modelExportFrequency | service.model_export_seconds (the learner's snapshot cadence) |
| logRetentionDays (-1: forever) | service.log_retention_days (experiments.retention) |
| modelRetrainDays, isAutoOptimization*, logMirror* | stored and returned, not acted on |

Apprentice and LoggingOnly serve the `baseline` champion (the first offered action) when
the experiment's champion was `uniform`.

A change of the exploration or reward settings starts a new model, as Personalizer did: new
VW arguments (a reward-settings change alone bumps `--random_seed`) are a new model lineage,
served from scratch and learned from the decisions whose window closes afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

import isodate
from flask import Response, jsonify

from app import db
from app.auth import current_principal
from app.http import json_body
from app.personalizer import bodies, features
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from experiments import clock, registry
from experiments.config import ExperimentConfig, RewardRule, ServiceSettings
from experiments.errors import ValidationFailed
from experiments.models import Experiment
from experiments.validation import AGGREGATIONS, MAX_WINDOW_SECONDS

MODES = {"Online": "online", "Apprentice": "apprentice", "LoggingOnly": "logging"}
DEFAULT_EXPORT_SECONDS = 60.0  # what GET shows when the experiment sets none
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


def parse_duration(value: Any, field: str, code: str = "InvalidServiceConfiguration") -> float:
    """Seconds from an ISO 8601 duration (`PT10M`) or a .NET TimeSpan (`00:10:00`)."""
    if isinstance(value, str):
        found = _TIMESPAN.match(value.strip())
        if found:
            days, hours, minutes, seconds = found.groups()
            return (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60
                    + float(seconds))
        try:
            parsed = isodate.parse_duration(value.strip())
        except (isodate.ISO8601Error, ValueError):
            parsed = None
        if isinstance(parsed, dt.timedelta):
            return parsed.total_seconds()
    raise PersonalizerError.invalid(field, "must be a duration such as PT10M or 00:10:00",
                                    code)


def format_duration(seconds: float) -> str:
    return isodate.duration_isoformat(dt.timedelta(seconds=seconds))


def _number(body: Mapping[str, Any], field: str, low: float, high: float) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not low <= value <= high:
        raise PersonalizerError.invalid(field, f"must be a number from {low:g} to {high:g}",
                                        "InvalidServiceConfiguration")
    return float(value)


def _reward(body: Mapping[str, Any], current: RewardRule) -> dict[str, Any]:
    reward = dict(current.raw)
    if body.get("rewardWaitTime") is not None:
        window = parse_duration(body["rewardWaitTime"], "rewardWaitTime",
                                "InvalidRewardWaitTime")
        if not 0 < window <= MAX_WINDOW_SECONDS:
            raise PersonalizerError.invalid("rewardWaitTime", "must be more than 0 and at "
                                            "most 30 days", "InvalidRewardWaitTime")
        reward["window_seconds"] = window
    default = _number(body, "defaultReward", -1e9, 1e9)
    if default is not None:
        reward["default"] = default
    aggregation = body.get("rewardAggregation")
    if aggregation is not None:
        if not isinstance(aggregation, str) or aggregation.lower() not in AGGREGATIONS:
            raise PersonalizerError.invalid(
                "rewardAggregation", f"must be one of {', '.join(AGGREGATIONS)}",
                "InvalidServiceConfiguration")
        reward["aggregation"] = aggregation.lower()
    return reward


def _learner(body: Mapping[str, Any], config: ExperimentConfig) -> dict[str, Any]:
    learner = dict(config.learner.raw)
    exploration = _number(body, "explorationPercentage", 0.0, 1.0)
    if exploration is not None and exploration != exploration_of(config):
        kept = {k: v for k, v in config.learner.params.items()
                if k in ("learning_rate", "power_t", "l2", "bits", "interactions", "cb_type",
                         "reward_range")}
        learner.update(exploration="epsilon", params={**kept, "epsilon": exploration})
    mode = body.get("learningMode")
    if mode is not None:
        if mode not in MODES:
            raise PersonalizerError.invalid("learningMode", f"must be one of "
                                            f"{', '.join(MODES)}",
                                            "InvalidLearningModeServiceConfiguration")
        learner["mode"] = MODES[mode]
    return learner


def _service(body: Mapping[str, Any], current: ServiceSettings) -> dict[str, Any]:
    service = dict(current.raw)
    if body.get("modelExportFrequency") is not None:
        service["model_export_seconds"] = max(1.0, parse_duration(
            body["modelExportFrequency"], "modelExportFrequency"))
    retention = body.get("logRetentionDays")
    if retention is not None:
        if isinstance(retention, bool) or not isinstance(retention, int) \
                or not (retention == -1 or retention >= 1):
            raise PersonalizerError.invalid("logRetentionDays", "must be -1 (forever) or a "
                                            "number of days >= 1", "InvalidLogRetentionDays")
        service["log_retention_days"] = retention
    retrain = body.get("modelRetrainDays")
    if retrain is not None:
        if isinstance(retrain, bool) or not isinstance(retrain, int) or retrain < 0:
            raise PersonalizerError.invalid("modelRetrainDays", "must be an integer >= 0",
                                            "InvalidModelRetrainDays")
        service["model_retrain_days"] = retrain
    auto = {k: body[k] for k in ("isAutoOptimizationEnabled", "autoOptimizationFrequency",
                                 "autoOptimizationStartDate") if body.get(k) is not None}
    mirror = {k: body[k] for k in ("logMirrorEnabled", "logMirrorSasUri")
              if body.get(k) is not None}
    if auto:
        service["auto_optimization"] = {**service.get("auto_optimization", {}), **auto}
    if mirror:
        service["log_mirror"] = {**service.get("log_mirror", {}), **mirror}
    return service


def exploration_of(config: ExperimentConfig) -> float:
    """The share of ranks that explore (epsilon); 0 for presets without one."""
    return float(config.learner.params.get("epsilon", 0.0))


REWARD_SETTINGS = ("window_seconds", "default", "aggregation")


def _new_model(learner: dict[str, Any]) -> dict[str, Any]:
    """The same learner settings with a new VW seed: new arguments, so a new model."""
    params = learner["params"]
    return {**learner, "params": {**params, "random_seed": params.get("random_seed", 0) + 1}}


def changes_of(target: Experiment, body: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of Tailor's configuration a service configuration body changes, as
    they are stored (`reward`, `learner`, `service`, maybe `champion`)."""
    config = target.settings
    changes: dict[str, Any] = {
        "reward": _reward(body, config.reward), "learner": _learner(body, config),
        "service": _service(body, config.service)}
    reward_changed = any(changes["reward"][k] != getattr(config.reward, k)
                         for k in REWARD_SETTINGS)
    if reward_changed and changes["learner"]["params"] == config.learner.params:
        changes["learner"] = _new_model(changes["learner"])
    if changes["learner"]["mode"] != "online" and config.champion_rule.type == "uniform":
        changes["champion"] = {"type": "baseline"}  # Personalizer's apprentice follows it
    return changes


def serialize(target: Experiment) -> dict[str, Any]:
    config = target.settings
    service = config.service
    auto, mirror = service.auto_optimization, service.log_mirror
    mode = next(k for k, v in MODES.items() if v == config.learner.mode)
    return {
        "rewardWaitTime": format_duration(config.reward.window_seconds),
        "defaultReward": config.reward.default,
        "rewardAggregation": config.reward.aggregation,
        "explorationPercentage": exploration_of(config),
        "modelExportFrequency": format_duration(
            _or(service.model_export_seconds, DEFAULT_EXPORT_SECONDS)),
        "logMirrorEnabled": mirror.get("logMirrorEnabled", False),
        "logMirrorSasUri": mirror.get("logMirrorSasUri"),
        "logRetentionDays": _or(service.log_retention_days, -1),
        "lastConfigurationEditDate": clock.iso(target.updated_at),
        "learningMode": mode,
        "isAutoOptimizationEnabled": auto.get("isAutoOptimizationEnabled", False),
        "autoOptimizationFrequency": auto.get("autoOptimizationFrequency"),
        "autoOptimizationStartDate": auto.get("autoOptimizationStartDate"),
        "modelRetrainDays": _or(service.model_retrain_days, 0),
    }


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


@route("GET", "/configurations/service", scope="analyst",
       invalid="InvalidServiceConfiguration",
       summary="Personalizer service configuration (the experiment's settings)")
def get_service_configuration() -> Response:
    return jsonify(serialize(experiment()))


@route("PUT", "/configurations/service", scope="admin",
       invalid="InvalidServiceConfiguration",
       summary="Change the Personalizer service configuration (a new experiment version)",
       schema=bodies.PersonalizerServiceConfiguration)
def update_service_configuration() -> Response:
    target = experiment()
    body = features.body_object(json_body())
    changed = sorted(k for k in body if k in FIELD_NAMES)
    try:
        registry.change_config(db.session(), registry.ChangeConfig(
            target, changes_of(target, body), "personalizer_service",
            current_principal().key_id, {"fields": changed}))
    except ValidationFailed as exc:
        raise PersonalizerError.invalid(exc.details[0]["field"] if exc.details else "body",
                                        exc.message, "InvalidServiceConfiguration") from exc
    return jsonify(serialize(target))


# The fields a PUT may name: those of the documented body (one list, so they cannot drift).
FIELD_NAMES = frozenset(bodies.PersonalizerServiceConfiguration.__annotations__)
