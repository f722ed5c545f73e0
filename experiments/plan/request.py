"""The body of `POST /v1/plan` as a typed record, and its validation.

`PlanRequest` is what /openapi.json documents (its fields are the body's, closed: an
unknown field is a 400 naming it, `app.http.command_body`); `parse` checks the values as
received and returns the record with defaults filled in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from msgspec import Meta

from experiments.errors import ValidationFailed
from experiments.value_bounds import VALUE_BOUND

DEFAULT_ICC = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_SHARE = 0.5
MAX_ACTIONS = 1_000_000
MIN_EXPLORATION = 1e-9  # importance weights stay below 1e15
MAX_LIFT = 1e6
MIN_TRAFFIC = 1e-6  # decisions per day: days stay finite
MAX_DECISIONS_PER_UNIT = 1e6
ARMS = ("bandit", "champion")


class PlanArms(TypedDict):
    """Traffic shares of the two arms compared (both > 0, summing to 1)."""

    bandit: Annotated[float, Meta(gt=0, lt=1)]
    champion: Annotated[float, Meta(gt=0, lt=1)]


@dataclass(frozen=True, kw_only=True)
class PlanRequest:
    """How long until an A/B comparison and an OPE estimate reach a CI half-width."""

    traffic_per_day: Annotated[float, Meta(ge=MIN_TRAFFIC, description=(
        "decisions (rank calls) per day, both arms together"))]
    actions: Annotated[int, Meta(ge=2, le=MAX_ACTIONS, description=(
        "actions offered per decision (K)"))]
    exploration: Annotated[float, Meta(ge=MIN_EXPLORATION, le=1, description=(
        "epsilon of the bandit's epsilon-greedy exploration: every action keeps at least "
        "epsilon/K probability"))]
    expected_reward_rate: Annotated[float, Meta(ge=-VALUE_BOUND, le=VALUE_BOUND, description=(
        "the champion's expected reward per decision: a rate in (0, 1) for 0/1 rewards, "
        "any mean when reward_sd is given"))]
    ci_half_width: Annotated[float, Meta(gt=0, description=(
        "target half-width of the confidence interval, in reward units"))]
    reward_sd: Annotated[float, Meta(gt=0, le=VALUE_BOUND, description=(
        "continuous rewards: their standard deviation per decision (absent: 0/1 rewards)"
    ))] | None = None
    decisions_per_unit: Annotated[float, Meta(ge=1, le=MAX_DECISIONS_PER_UNIT, description=(
        "average decisions each unit (customer) makes over the experiment"))] = 1.0
    icc: Annotated[float, Meta(ge=0, le=1, description=(
        "intra-unit correlation of rewards, for the design effect"))] = DEFAULT_ICC
    alpha: Annotated[float, Meta(gt=0, lt=0.5, description=(
        "1 - confidence level of the intervals"))] = DEFAULT_ALPHA
    arms: PlanArms | None = None
    lift: Annotated[float, Meta(gt=-1, le=MAX_LIFT, description=(
        "expected relative lift of the bandit's mean over the champion's"))] = 0.0


@dataclass(frozen=True, slots=True)
class _Range:
    """Bounds of a number; `*_open`: the bound itself is refused."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        return (f"must be in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}")


def _number(value: Any, field: str, bounds: _Range) -> float:
    """A finite JSON number within `bounds`, else a 400 naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed.field(field, "must be a finite number")
    if not bounds.holds(value):
        raise ValidationFailed.field(field, bounds.text())
    return float(value)


def _required(body: Mapping[str, Any], field: str) -> Any:
    if body.get(field) is None:
        raise ValidationFailed.field(field, "required")
    return body[field]


def _actions(value: Any) -> int:
    count = _number(value, "actions", _Range(2, MAX_ACTIONS))
    if not count.is_integer():
        raise ValidationFailed.field("actions", "must be an integer")
    return int(count)


def _arms(value: Any) -> PlanArms:
    """Both arms' shares; absent: 0.5 each. A plan compares two arms, so neither is 0."""
    if value is None:
        return {"bandit": DEFAULT_SHARE, "champion": DEFAULT_SHARE}
    if not isinstance(value, dict):
        raise ValidationFailed.field("arms", 'must be an object, e.g. {"bandit": 0.5, '
                                     '"champion": 0.5}')
    for name in sorted(set(value) - set(ARMS)):
        raise ValidationFailed.field(f"arms.{name}", "unknown field: the arms are bandit "
                                     "and champion")
    shares = {}
    for name in ARMS:
        if value.get(name) is None:
            raise ValidationFailed.field(f"arms.{name}", "required: both arms' shares")
        shares[name] = _number(value[name], f"arms.{name}", _Range(0, 1, True, True))
    if abs(sum(shares.values()) - 1.0) > 1e-9:
        raise ValidationFailed.field("arms", f"shares must sum to 1 (they sum to "
                                     f"{sum(shares.values()):g})")
    return {"bandit": shares["bandit"], "champion": shares["champion"]}


def _reward_rate(body: Mapping[str, Any], continuous: bool) -> float:
    """Any mean for continuous rewards; a rate in (0, 1) for 0/1 rewards."""
    bounds = _Range(-VALUE_BOUND, VALUE_BOUND) if continuous else _Range(0, 1, True, True)
    return _number(_required(body, "expected_reward_rate"), "expected_reward_rate", bounds)


def _lift(body: Mapping[str, Any], rate: float, continuous: bool) -> float:
    """The relative lift; for 0/1 rewards the bandit's rate ``rate * (1 + lift)`` stays < 1."""
    lift = _optional(body, "lift", 0.0, _Range(-1, MAX_LIFT, low_open=True))
    if not continuous and rate * (1.0 + lift) >= 1.0:
        raise ValidationFailed.field("lift", f"the bandit's rate {rate:g} * (1 + lift) must "
                                     "stay below 1 for 0/1 rewards")
    return lift


def _optional(body: Mapping[str, Any], field: str, default: float, bounds: _Range) -> float:
    value = body.get(field)
    return default if value is None else _number(value, field, bounds)


def parse(body: Mapping[str, Any]) -> PlanRequest:
    """The record of a JSON body whose field names are `PlanRequest`'s.

    Raises:
        ValidationFailed: A value missing or out of range (the field is named).
    """
    reward_sd = body.get("reward_sd")
    if reward_sd is not None:
        reward_sd = _number(reward_sd, "reward_sd", _Range(0, VALUE_BOUND, low_open=True))
    rate = _reward_rate(body, reward_sd is not None)
    return PlanRequest(
        traffic_per_day=_number(_required(body, "traffic_per_day"), "traffic_per_day",
                                _Range(MIN_TRAFFIC)),
        actions=_actions(_required(body, "actions")),
        exploration=_number(_required(body, "exploration"), "exploration",
                            _Range(MIN_EXPLORATION, 1)),
        expected_reward_rate=rate,
        ci_half_width=_number(_required(body, "ci_half_width"), "ci_half_width",
                              _Range(0, low_open=True)),
        reward_sd=reward_sd,
        decisions_per_unit=_optional(body, "decisions_per_unit", 1.0,
                                     _Range(1, MAX_DECISIONS_PER_UNIT)),
        icc=_optional(body, "icc", DEFAULT_ICC, _Range(0, 1)),
        alpha=_optional(body, "alpha", DEFAULT_ALPHA, _Range(0, 0.5, True, True)),
        arms=_arms(body.get("arms")),
        lift=_lift(body, rate, reward_sd is not None))
