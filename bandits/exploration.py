"""Exploration presets → Vowpal Wabbit arguments (pure functions).

An experiment's ``learner`` names an exploration preset and optional parameters::

    {"exploration": "squarecb", "params": {"gamma_scale": 10}}

``validate_learner`` checks and normalizes them once (defaults filled in, unknown keys
rejected); ``vw_arguments`` turns them into the VW command line for
``--cb_explore_adf``. Interactions are written in the namespace letters of
``bandits.features``: ``c`` (every context namespace) and ``a`` (every action namespace,
including the action id); the default ``["ca"]`` is the context × action quadratic.
``reward_range`` (default ``[0, 1]``) becomes ``--cb_min_cost/--cb_max_cost``: RegCB
does not learn at all when costs fall outside that range (measured), so experiments whose
rewards are amounts (e.g. an order value) must set it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bandits.features import (
    ACTION_NAMESPACE,
    CONTEXT_NAMESPACE,
    DEFAULT_INTERACTION,
    FLOAT32_LIMIT,
)
from bandits.learner import cost_from_reward


class ExplorationError(ValueError):
    """Invalid learner settings.

    Attributes:
        field: the offending field, e.g. ``"learner.params.epsilon"``.
    """

    def __init__(self, field: str, message: str, suggestion: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
        self.suggestion = suggestion


@dataclass(frozen=True)
class _Param:
    """A numeric parameter: VW flag, default, inclusive bounds, integer or not."""

    flag: str
    default: float | int | None
    low: float
    high: float
    integer: bool = False
    low_open: bool = False  # True: low itself is not allowed


# Per preset: the flag that selects it and its own parameters.
_PRESETS: dict[str, tuple[str, dict[str, _Param]]] = {
    "greedy": ("--epsilon 0", {}),
    "epsilon": ("", {"epsilon": _Param("--epsilon", 0.05, 0.0, 1.0)}),
    "squarecb": (
        "--squarecb",
        {
            "gamma_scale": _Param("--gamma_scale", 10.0, 0.0, 1e6, low_open=True),
            "gamma_exponent": _Param("--gamma_exponent", 0.5, 0.0, 1.0),
        },
    ),
    "softmax": ("--softmax", {"lambda": _Param("--lambda", 1.0, 0.0, 1e4)}),
    "bag": (
        "",
        {
            "bag": _Param("--bag", 5, 2, 32, integer=True),
            "epsilon": _Param("--epsilon", 0.0, 0.0, 1.0),
        },
    ),
    "cover": (
        "",
        {
            "cover": _Param("--cover", 3, 1, 32, integer=True),
            "psi": _Param("--psi", 1.0, 0.0, 1e4),
        },
    ),
    "regcb": ("--regcb", {"mellowness": _Param("--mellowness", 0.1, 0.0, 1e4, low_open=True)}),
}

# Parameters every preset accepts; None default = leave VW's own default.
_COMMON: dict[str, _Param] = {
    "learning_rate": _Param("--learning_rate", None, 0.0, 1e4, low_open=True),
    "power_t": _Param("--power_t", None, 0.0, 1.0),
    "l2": _Param("--l2", None, 0.0, 1.0),
    "bits": _Param("--bit_precision", 18, 10, 28, integer=True),
    # A new seed is a new model: Personalizer's reward-settings changes restart learning.
    "random_seed": _Param("--random_seed", None, 0, 2**31 - 1, integer=True),
}

DEFAULT_REWARD_RANGE = (0.0, 1.0)
CB_TYPES = frozenset({"mtr", "ips", "dr", "dm"})
_NAMESPACE_LETTERS = frozenset(CONTEXT_NAMESPACE + ACTION_NAMESPACE)

EXPLORATIONS: frozenset[str] = frozenset(_PRESETS)


def _field(name: str) -> str:
    return f"learner.params.{name}"


def _number(name: str, value: Any, spec: _Param) -> float | int:
    field = _field(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExplorationError(field, "must be a number")
    if spec.integer and not float(value).is_integer():
        raise ExplorationError(field, "must be an integer")
    if not math.isfinite(value):
        raise ExplorationError(field, "must be finite")
    if value < spec.low or value > spec.high or (spec.low_open and value == spec.low):
        bracket = "(" if spec.low_open else "["
        raise ExplorationError(field, f"must be in {bracket}{spec.low:g}, {spec.high:g}]")
    return int(value) if spec.integer else float(value)


def _interactions(value: Any) -> list[str]:
    field = _field("interactions")
    if not isinstance(value, list | tuple):
        raise ExplorationError(field, 'must be a list like ["ca"]')
    result: list[str] = []
    for index, item in enumerate(value):
        if (
            not isinstance(item, str)
            or not 2 <= len(item) <= 3
            or not set(item) <= _NAMESPACE_LETTERS
        ):
            raise ExplorationError(
                f"{field}[{index}]",
                "each interaction is 2 or 3 letters from 'c' (context) and 'a' (action)",
            )
        if item not in result:
            result.append(item)
    return result


def _reward_range(value: Any) -> list[float]:
    field = _field("reward_range")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ExplorationError(field, "must be [lowest reward, highest reward]")
    for index, bound in enumerate(value):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise ExplorationError(f"{field}[{index}]", "must be a number")
        if not math.isfinite(bound) or abs(bound) > FLOAT32_LIMIT:
            raise ExplorationError(f"{field}[{index}]", "must be finite")
    low, high = float(value[0]), float(value[1])
    if not low < high:
        raise ExplorationError(field, "lowest reward must be below highest reward")
    return [low, high]


_OTHER_PARAMS = ("interactions", "reward_range", "cb_type")


def _unknown(name: str, exploration: str,
             specs: Mapping[str, _Param]) -> tuple[str, str | None]:
    """`unknown parameter for squarecb; did you mean `gamma_scale`?` and the suggestion."""
    known = sorted([*specs, *_OTHER_PARAMS])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    elsewhere = sorted(p for p, (_, own) in _PRESETS.items() if name in own)
    hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(known)}"
    if elsewhere:
        hint = f"it belongs to {', '.join(elsewhere)}; " + hint
    return f"unknown parameter for {exploration}; {hint}", close[0] if close else None


def validate_learner(exploration: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check learner settings and return them normalized (defaults filled in).

    Args:
        exploration: one of ``EXPLORATIONS``.
        params: preset parameters plus the common ones (``learning_rate``, ``power_t``,
            ``l2``, ``bits``, ``interactions``, ``cb_type``, ``reward_range``).
            ``reward_range`` ``[low, high]`` (default ``[0, 1]``) bounds the rewards; it
            becomes VW's ``--cb_min_cost/--cb_max_cost``, which RegCB and SquareCB use.

    Returns:
        A new dict with every accepted parameter; VW defaults left out stay out.

    Raises:
        ExplorationError: naming the field (``learner.exploration`` or
            ``learner.params.<name>``).

    >>> validate_learner("epsilon", {"epsilon": 0.1})["epsilon"]
    0.1
    """
    if not isinstance(exploration, str) or exploration not in _PRESETS:
        choices = ", ".join(sorted(_PRESETS))
        raise ExplorationError("learner.exploration", f"must be one of {choices}")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise ExplorationError("learner.params", "must be an object")
    specs = {**_PRESETS[exploration][1], **_COMMON}
    normalized: dict[str, Any] = {}
    for name, value in params.items():
        if name == "interactions":
            normalized[name] = _interactions(value)
        elif name == "reward_range":
            normalized[name] = _reward_range(value)
        elif name == "cb_type":
            if value not in CB_TYPES:
                raise ExplorationError(_field(name), f"must be one of {sorted(CB_TYPES)}")
            normalized[name] = value
        elif name in specs:
            normalized[name] = _number(name, value, specs[name])
        else:
            message, close = _unknown(str(name), exploration, specs)
            raise ExplorationError(_field(str(name)), message, close)
    for name, spec in specs.items():
        if name not in normalized and spec.default is not None:
            normalized[name] = spec.default
    normalized.setdefault("interactions", [DEFAULT_INTERACTION])
    normalized.setdefault("reward_range", list(DEFAULT_REWARD_RANGE))
    return normalized


def vw_arguments(exploration: str, params: Mapping[str, Any] | None = None) -> str:
    """The full VW argument string for a preset.

    >>> vw_arguments("epsilon", {"epsilon": 0.1, "reward_range": [0, 5]}).split(" --")
    ... # doctest: +NORMALIZE_WHITESPACE
    ['--cb_explore_adf', 'quiet', 'epsilon 0.1', 'bit_precision 18',
     'cb_min_cost -5', 'cb_max_cost 0', 'interactions ca']
    """
    normalized = validate_learner(exploration, params)
    selector, own = _PRESETS[exploration]
    parts = ["--cb_explore_adf", "--quiet"]
    if selector:
        parts.append(selector)
    specs = {**own, **_COMMON}
    for name, spec in specs.items():
        if name in normalized:
            parts.append(f"{spec.flag} {normalized[name]:.12g}")
    low, high = normalized["reward_range"]
    parts.append(f"--cb_min_cost {cost_from_reward(high):.12g}")
    parts.append(f"--cb_max_cost {cost_from_reward(low):.12g}")
    if "cb_type" in normalized:
        parts.append(f"--cb_type {normalized['cb_type']}")
    parts.extend(f"--interactions {term}" for term in normalized["interactions"])
    return " ".join(parts)
