"""An experiment's configuration as rank reads it: parsed once per version, frozen.

The stored configuration is a nested JSON object (experiments.validation checks it when it
is written). Rank used to read it by string key several times per call and to derive the
same things from it on every call (the feature types, the action catalog by id, the
champion's policy spec); `ExperimentConfig` holds them, made once per configuration object
(`of`), which rank's per-process cache keeps per experiment version.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandits.features import FeatureTypes, feature_types


@dataclass(frozen=True)
class ExperimentConfig:
    """What rank needs of a configuration, typed.

    Attributes:
        raw: the stored configuration (the PII guard and profile merge read their own
            parts of it, experiments.pii and experiments.profile_merge).
        types: the declared feature kinds (`feature_types`).
        catalog: the action catalog by action id, in catalog order.
        unit_field: the context field that names the unit, if any.
        learner_mode: `online`, `apprentice` or `logging`.
        arms: traffic shares by arm, in configured order.
        champion: the champion as a policy spec (`fixed:<a>`, `model:<n>`, `baseline`,
            `uniform`; experiments.policies).
        window_seconds: the reward window.
        merges_profiles: whether rank merges the unit's stored profile.
    """

    raw: Mapping[str, Any]
    types: FeatureTypes
    catalog: Mapping[str, dict[str, Any]]
    unit_field: str | None
    learner_mode: str
    arms: Mapping[str, float]
    champion: str
    window_seconds: float
    merges_profiles: bool

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> ExperimentConfig:
        return cls(
            raw=config, types=feature_types(config.get("feature_types")),
            catalog={a["id"]: a for a in config.get("actions") or []},
            unit_field=config.get("unit_field"), learner_mode=config["learner"]["mode"],
            arms=config["arms"], champion=champion_spec(config["champion"]),
            window_seconds=config["reward"]["window_seconds"],
            merges_profiles=bool(config.get("profile")))

    def spec(self, arm: str) -> str:
        """The policy spec serving `arm` (the champion arm: the champion's spec)."""
        return self.champion if arm == "champion" else arm


def champion_spec(champion: Mapping[str, Any]) -> str:
    """The champion as a policy spec string (`fixed:<a>`, `uniform`, `model:<n>`)."""
    if champion["type"] == "fixed":
        return f"fixed:{champion['action_id']}"
    if champion["type"] == "model":
        return f"model:{champion['version']}"
    if champion["type"] == "baseline":
        return "baseline"
    return "uniform"


_PARSED: dict[int, tuple[Mapping[str, Any], ExperimentConfig]] = {}
_LOCK = threading.Lock()


def of(config: Mapping[str, Any]) -> ExperimentConfig:
    """`ExperimentConfig.parse(config)`, once per configuration object: keyed by identity
    and holding the object, so an id is not reused while its entry lives; configurations
    must not be changed in place once parsed (rank's cached ones never are)."""
    found = _PARSED.get(id(config))
    if found is not None and found[0] is config:
        return found[1]
    parsed = ExperimentConfig.parse(config)
    with _LOCK:
        if len(_PARSED) >= 1024:
            _PARSED.clear()
        _PARSED[id(config)] = (config, parsed)
    return parsed
