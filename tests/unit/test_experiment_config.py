"""ExperimentConfig: the stored configuration, parsed once into typed parts."""

from __future__ import annotations

import pytest

from bandits.exploration import vw_arguments
from experiments.config import (
    AnalysisSettings,
    Champion,
    ExperimentConfig,
    Guardrail,
    PIIRules,
    ProfileSetting,
    bandit_arguments,
)
from experiments.models import Experiment, ExperimentHistory
from experiments.validation import validate_champion, validate_new

FULL = {
    "key": "full", "name": "Full", "description": "every section",
    "actions": [{"id": "a", "features": {"x": 1}}, {"id": "b", "features": {"x": 2}}],
    "reward": {"events": {"click": 1.0, "buy": "value"}, "aggregation": "max",
               "window_seconds": 120, "default": -0.5},
    "learner": {"exploration": "squarecb", "params": {"gamma_scale": 10.0,
                                                      "reward_range": [-1, 50]},
                "mode": "apprentice"},
    "champion": {"type": "fixed", "action_id": "b"},
    "arms": {"champion": 0.5, "bandit": 0.3, "model:3": 0.2},
    "unit_field": "user_id", "pii_fields": ["user.email"], "pii_mode": "reject",
    "status": "paused", "alpha": 0.1,
    "analysis": {"multiple_testing": "bh", "cuped_covariate": "user.orders",
                 "guardrails": [{"metric": "event:click", "margin": 0.02}],
                 "per_unit_means": True},
    "profile": {"namespace": "user", "max_age_seconds": 3600},
    "service": {"model_export_seconds": 30, "log_retention_days": 7, "policy_name": "p",
                "log_mirror": {"logMirrorEnabled": True}},
    "feature_types": {"user.bio": "text"},
}


def test_every_part_of_a_stored_configuration_is_typed():
    stored = validate_new(FULL)
    config = ExperimentConfig.parse(stored)
    assert config.raw is stored  # the API answers the stored JSON as it was
    assert (config.key, config.name, config.description, config.status) == (
        "full", "Full", "every section", "paused")
    assert [a["id"] for a in config.actions or ()] == ["a", "b"]
    assert list(config.catalog) == ["a", "b"] and config.catalog["b"]["features"] == {"x": 2}
    assert dict(config.reward.events) == {"click": 1.0, "buy": "value"}
    assert (config.reward.aggregation, config.reward.window_seconds, config.reward.default) \
        == ("max", 120.0, -0.5)
    assert (config.learner.mode, config.learner.exploration) == ("apprentice", "squarecb")
    assert config.learner.vw_arguments == vw_arguments("squarecb", stored["learner"]["params"])
    assert config.learner.vw_arguments == bandit_arguments(stored)
    assert config.champion_rule == Champion("fixed", "b") and config.champion == "fixed:b"
    assert config.spec("champion") == "fixed:b" and config.spec("model:3") == "model:3"
    assert dict(config.arms) == {"champion": 0.5, "bandit": 0.3, "model:3": 0.2}
    assert config.model_versions == {3}
    assert config.pii == PIIRules(("user.email",), "reject", "user_id")
    assert config.alpha == 0.1
    assert config.analysis == AnalysisSettings("bh", "user.orders",
                                               (Guardrail("event:click", 0.02),), True)
    assert config.profile == ProfileSetting("user", 3600.0) and config.merges_profiles
    assert (config.service.model_export_seconds, config.service.log_retention_days,
            config.service.policy_name) == (30.0, 7, "p")
    assert dict(config.service.log_mirror) == {"logMirrorEnabled": True}
    assert dict(config.declared_types) == {"user.bio": "text"}
    assert config.types.context == {("user", "bio"): "text"}
    assert (config.learner_mode, config.window_seconds) == ("apprentice", 120.0)


def test_a_configuration_stored_before_later_keys_parses_with_their_defaults():
    old = {"key": "old", "actions": None, "arms": {"bandit": 1.0},
           "reward": {"events": {"reward": "value"}, "aggregation": "sum",
                      "window_seconds": 600, "default": 0.0},
           "learner": {"exploration": "epsilon", "params": {"epsilon": 0.2}},
           "champion": {"type": "uniform"}}
    config = ExperimentConfig.parse(old)
    assert config.name == "old" and config.status == "running" and config.alpha == 0.05
    assert config.learner.mode == "online" and config.pii == PIIRules()
    assert config.analysis == AnalysisSettings() and config.profile is None
    assert config.service.log_retention_days is None and config.actions is None
    assert config.catalog == {} and not config.merges_profiles and config.model_versions == set()


@pytest.mark.parametrize(("stored", "spec"), [
    ({"type": "uniform"}, "uniform"), ({"type": "baseline"}, "baseline"),
    ({"type": "fixed", "action_id": "a"}, "fixed:a"), ({"type": "model", "version": 4}, "model:4"),
])
def test_a_champion_round_trips_to_what_validation_stores(stored, spec):
    champion = Champion.parse(validate_champion(stored, {"a"}))
    assert champion.spec == spec
    assert champion.to_json() == validate_champion(stored, {"a"})


def test_a_row_parses_its_configuration_once_per_version():
    first = validate_new({"key": "k"})
    experiment = Experiment(key="k", config=first)
    parsed = experiment.settings
    assert experiment.settings is parsed  # read again: not parsed again
    experiment.config = validate_new({"key": "k", "alpha": 0.2})  # a new version
    assert experiment.settings is not parsed and experiment.settings.alpha == 0.2
    assert ExperimentHistory(config=first).settings.alpha == 0.05
