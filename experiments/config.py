"""An experiment's configuration, typed: parsed once per version, frozen.

The stored configuration is a nested JSON object: `experiments.validation` is the one
place that turns a request body into it (a 400 naming the path) and works out a changed
one (`validate_patch`, `validate_replacement`). Everything else reads it through
`ExperimentConfig`, made here by `ExperimentConfig.parse` (the only reader of the stored
JSON by key): the ORM's `Experiment.settings` parses it once per loaded row and version
(experiments.models), rank's experiment cache once per cached version
(`experiment_cache.ExperimentSnapshot.settings`). The stored JSON
itself stays in `raw`: the API answers it as stored, and the history keeps it.

Configurations stored before a key existed lack it: `parse` fills the defaults the
readers used to apply (`alpha` 0.05, `pii_mode` hash, no analysis settings...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bandits.exploration import vw_arguments
from bandits.features import FeatureTypes, feature_types

Json = Mapping[str, Any]


@dataclass(frozen=True)
class RewardRule:
    """How reward events become a decision's reward (experiments.rewards).

    Attributes:
        events: event type -> its fixed reward, or `"value"` (the event carries it).
        aggregation: `sum`, `earliest`, `max`, `min`, `average` or `median`.
        window_seconds: how long after activation rewards count.
        default: the reward of a decision whose window closed without one.
        raw: the stored `reward` object (validation derives learner settings from it).
    """

    events: Mapping[str, float | str]
    aggregation: str
    window_seconds: float
    default: float
    raw: Json

    @classmethod
    def parse(cls, raw: Json) -> RewardRule:
        return cls(raw["events"], raw["aggregation"], raw["window_seconds"], raw["default"],
                   raw)


@dataclass(frozen=True)
class LearnerSettings:
    """The bandit: its mode, exploration preset and that preset's (validated) parameters."""

    mode: str  # online, apprentice or logging
    exploration: str
    params: Mapping[str, Any]
    raw: Json  # the stored `learner` object (history details, offline evaluation)

    @classmethod
    def parse(cls, raw: Json) -> LearnerSettings:
        return cls(raw.get("mode", "online"), raw["exploration"], raw["params"], raw)

    @cached_property
    def vw_arguments(self) -> str:
        """The online learner's VW arguments (derived once per configuration version)."""
        return vw_arguments(self.exploration, self.params)


@dataclass(frozen=True)
class Champion:
    """The policy the bandit is compared with, serving the champion arm."""

    type: str  # fixed, uniform, baseline or model
    action_id: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, raw: Json) -> Champion:
        return cls(raw.get("type", "uniform"), raw.get("action_id"), raw.get("version"))

    @property
    def spec(self) -> str:
        """The champion as a policy spec (`fixed:<a>`, `model:<n>`, `baseline`, `uniform`;
        experiments.policies)."""
        if self.type == "fixed":
            return f"fixed:{self.action_id}"
        if self.type == "model":
            return f"model:{self.version}"
        return "baseline" if self.type == "baseline" else "uniform"

    def to_json(self) -> dict[str, Any]:
        """The stored `champion` object."""
        if self.type == "fixed":
            return {"type": "fixed", "action_id": self.action_id}
        if self.type == "model":
            return {"type": "model", "version": self.version}
        return {"type": self.type}


@dataclass(frozen=True)
class PIIRules:
    """Which context fields are personal and what rank does with them (experiments.pii)."""

    fields: tuple[str, ...] = ()
    mode: str = "hash"  # or reject
    unit_field: str | None = None

    @classmethod
    def parse(cls, raw: Json) -> PIIRules:
        return cls(tuple(raw.get("pii_fields") or ()), raw.get("pii_mode", "hash"),
                   raw.get("unit_field"))


@dataclass(frozen=True)
class ProfileSetting:
    """Merge the unit's stored profile into the context under `namespace` when it is at
    most `max_age_seconds` old (experiments.profile_merge)."""

    namespace: str
    max_age_seconds: float


@dataclass(frozen=True)
class Guardrail:
    """A metric the A/B report tests for non-inferiority within `margin`."""

    metric: str  # "reward" or "event:<type>"
    margin: float
    higher_is_better: bool = False


@dataclass(frozen=True)
class AnalysisSettings:
    """How the A/B report is analysed (experiments.analysis_config validates them)."""

    multiple_testing: str = "holm"  # or bh
    cuped_covariate: str | None = None
    guardrails: tuple[Guardrail, ...] = ()
    per_unit_means: bool = False

    @classmethod
    def parse(cls, raw: Json | None) -> AnalysisSettings:
        raw = raw or {}
        return cls(raw.get("multiple_testing", "holm"), raw.get("cuped_covariate"),
                   tuple(Guardrail(g["metric"], g["margin"], g.get("higher_is_better", False))
                         for g in raw.get("guardrails") or ()),
                   raw.get("per_unit_means", False))


@dataclass(frozen=True)
class ServiceSettings:
    """Operational settings (Personalizer's service configuration); None: not set."""

    model_export_seconds: float | None = None
    log_retention_days: int | None = None
    model_retrain_days: int | None = None
    policy_name: str | None = None
    # Personalizer's auto-optimization and log-mirror settings, stored as sent (camelCase).
    auto_optimization: Json = field(default_factory=dict)
    log_mirror: Json = field(default_factory=dict)
    raw: Json = field(default_factory=dict)  # the stored `service` object, as stored

    @classmethod
    def parse(cls, raw: Json | None) -> ServiceSettings:
        raw = raw or {}
        return cls(raw.get("model_export_seconds"), raw.get("log_retention_days"),
                   raw.get("model_retrain_days"), raw.get("policy_name"),
                   raw.get("auto_optimization") or {}, raw.get("log_mirror") or {}, raw)


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment's whole configuration, typed.

    Attributes:
        raw: the stored configuration (what the API answers; the history keeps it).
        key, name, description, status: as registered / last changed.
        actions: the action catalog in catalog order (None: actions come with each rank).
        catalog: the same actions by id.
        reward, learner, champion_rule, pii, analysis, service: the parts, typed.
        champion: the champion as a policy spec (`champion_rule.spec`).
        arms: traffic shares by arm, in configured order.
        unit_field: the context field that names the unit, if any.
        alpha: the A/B report's significance level.
        profile: the profile merge setting (None: rank merges no profile).
        declared_types: `feature_types` as stored (path -> kind); `types`, parsed.
        learner_mode, window_seconds, merges_profiles: `learner.mode`,
            `reward.window_seconds` and `profile is not None`, read on every rank.
    """

    raw: Json
    key: str
    name: str
    description: str | None
    status: str
    actions: tuple[dict[str, Any], ...] | None
    catalog: Mapping[str, dict[str, Any]]
    reward: RewardRule
    learner: LearnerSettings
    champion_rule: Champion
    champion: str
    arms: Mapping[str, float]
    unit_field: str | None
    pii: PIIRules
    alpha: float
    analysis: AnalysisSettings
    profile: ProfileSetting | None
    service: ServiceSettings
    declared_types: Mapping[str, str]
    learner_mode: str
    window_seconds: float
    merges_profiles: bool

    @classmethod
    def parse(cls, config: Json) -> ExperimentConfig:
        """The typed record of a stored (validated) configuration."""
        actions = config.get("actions")
        reward, learner = RewardRule.parse(config["reward"]), LearnerSettings.parse(
            config["learner"])
        champion, profile = Champion.parse(config.get("champion") or {}), config.get("profile")
        return cls(
            raw=config, key=config["key"], name=config.get("name", config["key"]),
            description=config.get("description"), status=config.get("status", "running"),
            actions=None if actions is None else tuple(actions),
            catalog={a["id"]: a for a in actions or ()}, reward=reward, learner=learner,
            champion_rule=champion, champion=champion.spec, arms=config.get("arms") or {},
            unit_field=config.get("unit_field"), pii=PIIRules.parse(config),
            alpha=float(config.get("alpha", 0.05)),
            analysis=AnalysisSettings.parse(config.get("analysis")),
            profile=None if not profile else ProfileSetting(
                profile["namespace"], profile["max_age_seconds"]),
            service=ServiceSettings.parse(config.get("service")),
            declared_types=config.get("feature_types") or {}, learner_mode=learner.mode,
            window_seconds=reward.window_seconds, merges_profiles=bool(profile))

    @cached_property
    def types(self) -> FeatureTypes:
        """The declared feature kinds, parsed (when first read: an `embedding` kind needs
        the embeddings extra, which only encoding needs)."""
        return feature_types(self.declared_types)

    def spec(self, arm: str) -> str:
        """The policy spec serving `arm` (the champion arm: the champion's spec)."""
        return self.champion if arm == "champion" else arm

    @property
    def model_versions(self) -> set[int]:
        """The model snapshots the configuration serves (`model:<n>` arms and champion)."""
        versions = {int(arm[6:]) for arm in self.arms if arm.startswith("model:")}
        if self.champion_rule.type == "model" and self.champion_rule.version is not None:
            versions.add(self.champion_rule.version)
        return versions


def bandit_arguments(config: Json) -> str:
    """The VW arguments of a stored configuration's online learner."""
    return LearnerSettings.parse(config["learner"]).vw_arguments
