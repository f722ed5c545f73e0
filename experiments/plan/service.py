"""`POST /v1/plan`: days until an A/B comparison and an OPE estimate reach a CI half-width.

The maths is `experiments.plan.maths`; here the request's numbers become the two answers,
their assumptions (`NOTES`) and warnings. No database: a plan reads nothing but its body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from experiments.abstats import StatWarning
from experiments.plan import maths
from experiments.plan.maths import ArmRewards
from experiments.plan.request import DEFAULT_SHARE, PlanRequest

DAYS_WARNING = 365.0
# Below these counts the normal approximation behind both answers is poor.
MIN_UNITS_PER_ARM = 30
MIN_EVENTS = 10
TOO_MANY = "too_many_decisions"  # the reason of a plan beyond maths.MAX_DECISIONS

NOTES = (
    "traffic_per_day counts decisions (rank calls) of both arms; units = decisions / "
    "decisions_per_unit, assumed not to grow with the experiment's length.",
    "Intervals are normal approximations at level 1 - alpha (the reports use t intervals "
    "over units, which agree at these sizes).",
    "Returning units: Kish's design effect 1 + (decisions_per_unit - 1) * icc multiplies "
    "both variances; the OPE side assumes its importance-weighted terms share the rewards' "
    "icc.",
    "A/B: the difference of the arms' mean rewards per decision, two-sample normal "
    "approximation with the arms' shares; the bandit's mean is expected_reward_rate * "
    "(1 + lift), the champion's expected_reward_rate.",
    "0/1 rewards have Bernoulli variance rate * (1 - rate); with reward_sd, both arms' "
    "rewards have that standard deviation.",
    "OPE: the IPS estimate of a deterministic target policy whose expected reward is the "
    "bandit's mean, on the bandit arm's epsilon-greedy log only (a fixed champion does not "
    "explore).",
    "Conservative: the target always disagrees with the logging policy's greedy choice, so "
    "its action had probability epsilon / actions and the importance weight is actions / "
    "epsilon (the largest); a target that often agrees needs fewer decisions.",
)


@dataclass(frozen=True, slots=True)
class ABPlan:
    """The A/B comparison: decisions (both arms), units and days to the target half-width.

    The counts and days are ``None`` with ``reason: "too_many_decisions"`` beyond
    ``maths.MAX_DECISIONS``.
    """

    decisions: int | None
    decisions_per_arm: dict[str, int] | None
    units: int | None
    days: float | None
    means: dict[str, float]
    standard_deviations: dict[str, float]
    design_effect: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OPEPlan:
    """The OPE estimate: logged bandit-arm decisions, all decisions and days (``None`` with
    a ``reason`` as in `ABPlan`)."""

    logged_decisions: int | None
    decisions: int | None
    days: float | None
    min_propensity: float
    max_importance_weight: float
    ips_standard_deviation: float | None
    design_effect: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer of `POST /v1/plan`."""

    ci_half_width: float
    level: float
    ab: ABPlan
    ope: OPEPlan
    notes: list[str]
    warnings: list[StatWarning] = field(default_factory=list)


def _arm_rewards(request: PlanRequest, mean: float) -> ArmRewards:
    if request.reward_sd is None:
        return ArmRewards.binary(mean)
    return ArmRewards(mean, request.reward_sd)


def _shares(request: PlanRequest) -> tuple[float, float]:
    """(bandit, champion) shares; `parse` fills in 0.5 each when the body has none."""
    if request.arms is None:
        return DEFAULT_SHARE, DEFAULT_SHARE
    return request.arms["bandit"], request.arms["champion"]


def _ceil(value: float) -> int:
    """``ceil`` that forgives a float's last bit (``0.1 * 3 / 0.3`` is not above 1)."""
    return math.ceil(value - 1e-9 * value)


def _reason(decisions: int | None) -> str | None:
    return TOO_MANY if decisions is None else None


def ab_plan(request: PlanRequest, z: float, deff: float) -> ABPlan:
    """Decisions until the difference of the arms' means has the target half-width."""
    bandit_share, champion_share = _shares(request)
    champion = _arm_rewards(request, request.expected_reward_rate)
    bandit = _arm_rewards(request, request.expected_reward_rate * (1.0 + request.lift))
    n = maths.ab_decisions(bandit, champion, bandit_share, request.ci_half_width, z, deff)
    return ABPlan(
        decisions=n,
        decisions_per_arm=None if n is None else {"bandit": _ceil(n * bandit_share),
                                                  "champion": _ceil(n * champion_share)},
        units=None if n is None else _ceil(n / request.decisions_per_unit),
        days=None if n is None else n / request.traffic_per_day,
        means={"bandit": bandit.mean, "champion": champion.mean},
        standard_deviations={"bandit": bandit.sd, "champion": champion.sd},
        design_effect=deff, reason=_reason(n))


def ope_plan(request: PlanRequest, z: float, deff: float) -> OPEPlan:
    """Bandit-arm decisions until the target policy's IPS estimate has the half-width."""
    bandit_share, _ = _shares(request)
    target = _arm_rewards(request, request.expected_reward_rate * (1.0 + request.lift))
    propensity = request.exploration / request.actions
    variance = maths.ips_variance(target, propensity)
    logged = maths.decisions_for(variance, request.ci_half_width, z, deff)
    decisions = None if logged is None else _ceil(logged / bandit_share)
    return OPEPlan(
        logged_decisions=logged, decisions=decisions,
        days=None if decisions is None else decisions / request.traffic_per_day,
        min_propensity=propensity, max_importance_weight=1.0 / propensity,
        ips_standard_deviation=math.sqrt(variance) if math.isfinite(variance) else None,
        design_effect=deff, reason=_reason(logged))


def warnings(request: PlanRequest, ab: ABPlan, ope: OPEPlan) -> list[StatWarning]:
    """What makes this plan doubtful: over a year (or no plan at all), or too few units or
    events for the normal approximation."""
    found = [StatWarning(f"{name}_beyond_a_year", f"the {label} needs more than "
                         f"{DAYS_WARNING:g} days: widen ci_half_width or add traffic")
             for name, label, days in (("ab", "A/B comparison", ab.days),
                                       ("ope", "OPE estimate", ope.days))
             if days is None or days > DAYS_WARNING]
    per_arm = ab.decisions_per_arm
    if per_arm and min(per_arm.values()) / request.decisions_per_unit < MIN_UNITS_PER_ARM:
        found.append(StatWarning("ab_few_units", f"an arm gets fewer than {MIN_UNITS_PER_ARM}"
                                 " units: the normal approximation is poor; plan more "
                                 "decisions"))
    if request.reward_sd is None and _events(request, ope) < MIN_EVENTS:
        found.append(StatWarning("ope_few_events", f"fewer than {MIN_EVENTS} rewarded "
                                 "decisions of the target's action are expected in the log: "
                                 "the IPS interval is unreliable; plan more decisions"))
    return found


def _events(request: PlanRequest, ope: OPEPlan) -> float:
    """Expected 0/1 rewards among the logged decisions where the target's action was taken
    (infinite when there is no plan: no warning about too few)."""
    if ope.logged_decisions is None:
        return math.inf
    rate = request.expected_reward_rate * (1.0 + request.lift)
    return ope.logged_decisions * ope.min_propensity * rate


def plan(request: PlanRequest) -> Plan:
    """Days until an A/B comparison and an OPE estimate reach `request.ci_half_width`."""
    z = maths.z_value(request.alpha)
    deff = maths.design_effect(request.decisions_per_unit, request.icc)
    ab, ope = ab_plan(request, z, deff), ope_plan(request, z, deff)
    return Plan(ci_half_width=request.ci_half_width, level=1.0 - request.alpha, ab=ab,
                ope=ope, notes=list(NOTES), warnings=warnings(request, ab, ope))
