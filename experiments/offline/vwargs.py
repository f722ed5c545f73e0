"""Custom policies of an offline evaluation (VW command lines) read as Tailor learner settings.

A policy string such as ``--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr
-q ::`` is untrusted input: it is never passed to VW. It goes through the allow-list of the
learning-policy endpoint (``bandits.policy_arguments.parse_policy``: learning options only,
never a file, port, data or daemon option), then ``experiments.validation.
validate_learner_config`` (defaults, the reward range the reward rule implies); VW's command
line is built again from the result by ``bandits.exploration``. The input-format options
Personalizer's own examples carry (``--dsjson``, ``--json``) say how VW reads a log file,
which Tailor does not hand to VW: they are dropped before the allow-list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandits.exploration import ExplorationError
from bandits.policy_arguments import parse_policy
from experiments.errors import ValidationFailed
from experiments.validation import validate_learner_config

FORMAT_OPTIONS = frozenset({"--dsjson", "--json"})


@dataclass(frozen=True)
class LearnerSetting:
    """A policy string read as Tailor learner settings.

    Attributes:
        learner: The validated ``{"exploration", "params", "mode"}`` setting.
        candidate: Its OPE candidate name (``vw:<exploration>,<param>=<value>,...``).
    """

    learner: dict[str, Any]
    candidate: str


def read(text: Any, reward: Mapping[str, Any], field: str = "arguments") -> LearnerSetting:
    """The learner setting a policy string describes.

    Raises:
        ValidationFailed: On ``field``, naming the option that cannot be accepted.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed.field(field, "must be a non-empty VW argument string")
    kept = " ".join(word for word in text.split() if word not in FORMAT_OPTIONS)
    try:
        exploration, params = parse_policy(kept)
        learner = validate_learner_config({"exploration": exploration, "params": params},
                                          reward)
    except ExplorationError as exc:
        raise ValidationFailed.field(field, exc.reason) from None
    except ValidationFailed as exc:
        raise ValidationFailed.field(field, exc.message) from None
    return LearnerSetting(learner, candidate_name(learner))


def candidate_name(learner: Mapping[str, Any]) -> str:
    """The ``vw:`` OPE candidate of a validated learner setting."""
    parts = [str(learner["exploration"])]
    for key, value in sorted(learner["params"].items()):
        if key == "interactions":
            parts.append(f"interactions={'+'.join(value)}")
        elif key == "reward_range":
            parts.append(f"reward_range={value[0]:.12g}:{value[1]:.12g}")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.12g}")
        else:
            parts.append(f"{key}={value}")
    return "vw:" + ",".join(parts)
