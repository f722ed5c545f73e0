"""``vw:`` candidates: another VW learner setting replayed over the log (progressive validation).

Like Personalizer's offline evaluation ("optimization discovery"): a fresh VW model with
the candidate's settings reads the logged decisions in time order; for each one it first
predicts its pmf over the offered actions - that *pre-update* pmf is the candidate's
policy for this decision, so no decision is evaluated by a model that has learned from it
- and then learns from it with the logged propensity (cost = -reward). The estimates
therefore say how the setting would have done had it been learning online on this
traffic, which is the question when choosing a learner setting.

Syntax: ``vw:<exploration>[,<param>=<value>...]`` with the presets and parameters of the
experiment's ``learner`` setting (validated by the same code, never passed to VW as
free text): e.g. ``vw:squarecb,gamma_scale=20,learning_rate=0.5``,
``vw:epsilon,epsilon=0.1,interactions=ca+cca``, ``vw:regcb,mellowness=0.01,cb_type=mtr``,
``reward_range=0:5``. Lists use ``+``, ranges ``low:high``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandits.features import NO_TYPES, FeatureTypes, build_example
from bandits.learner import cost_from_reward
from bandits.policy import checked_pmf, workspace
from experiments.config import LearnerSettings
from experiments.errors import ValidationFailed
from experiments.ope_report.scope import Chunk
from experiments.validation import validate_learner_config


@dataclass(frozen=True)
class VWSpec:
    """A validated learner setting.

    Attributes:
        exploration: The exploration preset.
        params: Normalised parameters (defaults filled in).
        arguments: The VW command line built from them.
    """

    exploration: str
    params: dict[str, Any]
    arguments: str


def parse_vw_spec(text: str, reward: Mapping[str, Any]) -> VWSpec:
    """Parse and validate ``<exploration>[,<param>=<value>...]``.

    Raises:
        ValidationFailed: Naming the candidate and what is wrong with it.
    """
    exploration, *items = [part.strip() for part in text.split(",")]
    params: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise _bad(text, f"{item!r} is not <param>=<value>")
        params[key] = _value(key, value, text)
    try:
        learner = validate_learner_config({"exploration": exploration, "params": params}, reward)
    except ValidationFailed as exc:
        raise _bad(text, exc.message) from None
    arguments = LearnerSettings.parse(learner).vw_arguments
    return VWSpec(exploration, learner["params"], arguments)


def _value(key: str, value: str, text: str) -> Any:
    if key == "interactions":
        return value.split("+")
    if key == "reward_range":
        low, colon, high = value.partition(":")
        if not colon:
            raise _bad(text, "reward_range is low:high")
        return [_number(low, text), _number(high, text)]
    if key == "cb_type":
        return value
    return _number(value, text)


def _number(value: str, text: str) -> float | int | str:
    """The number a value spells; other text is left for the learner validation to refuse."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _bad(text: str, message: str) -> ValidationFailed:
    return ValidationFailed.field("candidates", f"vw:{text}: {message}")


@dataclass
class ReplaySource:
    """The candidate's pre-update pmf for each decision, learning as it goes.

    Chunks must arrive in time order, each exactly once (one report pass).
    """

    name: str
    spec: VWSpec
    learned: int = 0
    types: FeatureTypes = NO_TYPES  # the experiment's feature_types, as rank encoded
    _workspace: Any = field(default=None, repr=False)

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        if self._workspace is None:
            self._workspace = workspace(self.spec.arguments)
        out = np.zeros(chunk.mask.shape)
        for i, actions in enumerate(chunk.actions):
            out[i, : len(actions)] = self._step(chunk, i, actions)
        return out

    def _step(self, chunk: Chunk, i: int, actions: list[dict[str, Any]]) -> list[float]:
        pairs = [(a["id"], a.get("features") or {}) for a in actions]
        label = (int(chunk.chosen[i]), cost_from_reward(chunk.rewards[i]),
                 float(chunk.propensity[i]))
        examples = self._workspace.parse(build_example(chunk.contexts[i], pairs, label,
                                                       types=self.types))
        try:
            self._workspace.predict(examples)
            pmf = checked_pmf(examples[0].get_prediction(), len(pairs))
            self._workspace.learn(examples)
        finally:
            self._workspace.finish_example(examples)
        self.learned += 1
        return pmf

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.finish()
            self._workspace = None
