"""Personalizer's learning-policy arguments (a VW command line) read as Tailor learner settings.

A policy string such as ``--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr
-q ::`` is untrusted input: it is never passed to VW. Each option is mapped onto the
``learner`` setting of an experiment (``{"exploration", "params"}``), which
``experiments.validation.validate_learner_config`` checks and ``bandits.exploration``
turns back into the VW arguments Tailor generates itself. Options that name files, ports
or input data are refused with their own message; any other option outside the mapping is
refused too, naming it. Format options (``--dsjson``, ``--json``, ``--quiet``) and
``--cb_explore_adf`` are accepted and dropped.

Interactions use Tailor's namespace letters (``c`` context, ``a`` action; see
``bandits.features``); ``-q ::`` (every pair, Personalizer's default) becomes
``["cc", "ca", "aa"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.errors import ValidationFailed
from experiments.validation import validate_learner_config

FILE_OPTIONS = frozenset({
    "-f", "--final_regressor", "-i", "--initial_regressor", "-d", "--data", "--daemon",
    "--port", "--cache_file", "-c", "--cache", "--readable_model", "--invert_hash",
    "--pid_file", "-p", "--predictions", "-r", "--raw_predictions", "--audit_regressor",
    "--feature_mask", "--dictionary", "--dictionary_path", "--save_per_pass",
    "--num_children", "--extra_metrics", "--sendto", "--output_feature_regularizer_binary",
    "--output_feature_regularizer_text", "--initial_weights", "--input_feature_regularizer",
    "--span_server", "--unique_id", "--total", "--node", "--foreground", "--port_file",
    "--save_resume", "--preserve_performance_counters", "--id", "--passes", "--holdout_off",
    "--kill_cache", "--compressed", "--no_stdin", "--audit", "-a", "--progress", "-P",
    "--binary", "--examples"})
IGNORED = frozenset({"--cb_explore_adf", "--dsjson", "--json", "--quiet"})
SELECTORS = {"--squarecb": "squarecb", "--softmax": "softmax", "--regcb": "regcb"}
VALUED = {"--epsilon": "epsilon", "--gamma_scale": "gamma_scale",
          "--gamma_exponent": "gamma_exponent", "--lambda": "lambda", "--bag": "bag",
          "--cover": "cover", "--psi": "psi", "--mellowness": "mellowness",
          "-l": "learning_rate", "--learning_rate": "learning_rate", "--power_t": "power_t",
          "--l2": "l2", "-b": "bits", "--bit_precision": "bits", "--cb_type": "cb_type",
          "-q": "interactions", "--quadratic": "interactions", "--interactions": "interactions",
          "--cubic": "interactions", "--cb_min_cost": "cb_min_cost",
          "--cb_max_cost": "cb_max_cost"}
ALL_PAIRS = ["cc", "ca", "aa"]


@dataclass(frozen=True)
class LearnerSetting:
    """A policy string read as Tailor learner settings.

    Attributes:
        learner: The validated ``{"exploration", "params"}`` setting.
        candidate: Its OPE candidate name (``vw:<exploration>,<param>=<value>,...``).
    """

    learner: dict[str, Any]
    candidate: str


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.field(field, message)


def tokens(text: Any, field: str = "arguments") -> list[tuple[str, str | None]]:
    """``(option, value)`` pairs of a policy string (``--x=1`` and ``--x 1`` alike).

    Raises:
        ValidationFailed: A non-string, an over-long string, a file/port/data option, an
            unknown option or a missing value; the message names the option.
    """
    if not isinstance(text, str) or not text.strip() or len(text) > 1024:
        raise _bad(field, "must be a VW argument string of at most 1024 characters")
    words, index = text.split(), 0
    pairs: list[tuple[str, str | None]] = []
    while index < len(words):
        option, eq, value = words[index].partition("=")
        index += 1
        if option in FILE_OPTIONS:
            raise _bad(field, f"{option} reads or writes files, ports or data: policy "
                       "arguments may only set learning options")
        if option in IGNORED or option in SELECTORS:
            pairs.append((option, None))
            continue
        if option not in VALUED:
            raise _bad(field, f"option {option!r} is not allowed; allowed: "
                       f"{', '.join(sorted({*VALUED, *SELECTORS, *IGNORED}))}")
        if not eq:
            if index >= len(words):
                raise _bad(field, f"{option} needs a value")
            value, index = words[index], index + 1
        pairs.append((option, value))
    return pairs


def _number(option: str, value: str, field: str) -> float | int:
    try:
        number = float(value)
    except ValueError:
        raise _bad(field, f"{option} needs a number, got {value!r}") from None
    return int(number) if number.is_integer() and option in ("--bag", "--cover", "-b",
                                                             "--bit_precision") else number


def _interaction(value: str, field: str) -> list[str]:
    if value == "::" or value == ":::":
        return ALL_PAIRS
    if not 2 <= len(value) <= 3 or not set(value) <= {"c", "a"}:
        raise _bad(field, f"interaction {value!r}: Tailor's namespaces are 'c' (every "
                   "context feature) and 'a' (every action feature), e.g. -q ca, or -q ::")
    return [value]


def _exploration(options: dict[str, Any]) -> str:
    for flag, name in SELECTORS.items():
        if flag in options:
            return name
    for name in ("bag", "cover"):
        if name in options:
            return name
    return "greedy" if options.get("epsilon") == 0 else "epsilon"


def read(text: Any, reward: Mapping[str, Any], field: str = "arguments") -> LearnerSetting:
    """The learner setting a Personalizer policy string describes.

    Raises:
        ValidationFailed: Naming the option that cannot be accepted.
    """
    options: dict[str, Any] = {}
    interactions: list[str] = []
    for option, value in tokens(text, field):
        name = VALUED.get(option)
        if value is None or name is None:
            options[option] = True
        elif name == "interactions":
            interactions += [i for i in _interaction(value, field) if i not in interactions]
        elif name == "cb_type":
            options[name] = value
        else:
            options[name] = _number(option, value, field)
    exploration = _exploration(options)
    params = {k: v for k, v in options.items() if not k.startswith("-")}
    if exploration == "greedy":
        params.pop("epsilon", None)
    if "cb_min_cost" in params or "cb_max_cost" in params:
        low, high = params.pop("cb_max_cost", 0.0), params.pop("cb_min_cost", -1.0)
        params["reward_range"] = [0.0 - low, 0.0 - high]
    if interactions:
        params["interactions"] = interactions
    try:
        learner = validate_learner_config({"exploration": exploration, "params": params},
                                          reward)
    except ValidationFailed as exc:
        raise _bad(field, f"{exc.message}") from None
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
