"""`experiments.plan`: sample sizes for a CI half-width, checked against statsmodels, an
exact enumeration, and simulations with known truth (returning units, epsilon-greedy logs)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower

from experiments.abstats import MeanStats
from experiments.abstats.ratio import RatioStats, ratio_difference
from experiments.errors import ValidationFailed
from experiments.plan import maths, parse, plan
from experiments.plan.maths import ArmRewards

BODY = {"traffic_per_day": 5000, "actions": 4, "exploration": 0.2,
        "expected_reward_rate": 0.1, "ci_half_width": 0.01}


@pytest.mark.parametrize(("rate", "bandit_share", "alpha", "half"), [
    (0.1, 0.5, 0.05, 0.01), (0.3, 0.2, 0.05, 0.02), (0.05, 0.9, 0.01, 0.005),
    (0.5, 0.35, 0.1, 0.001)])
def test_ab_size_is_statsmodels_normal_ind_power(rate, bandit_share, alpha, half):
    # A half-width h is the one-sided critical distance at alpha/2 with power 0.5: nobs1
    # of NormalIndPower for effect h / sd, ratio n_champion / n_bandit.
    arm = ArmRewards.binary(rate)
    n = maths.ab_decisions(arm, arm, bandit_share, half, maths.z_value(alpha))
    nobs1 = NormalIndPower().solve_power(effect_size=half / arm.sd, alpha=alpha / 2,
                                         power=0.5, ratio=(1 - bandit_share) / bandit_share,
                                         alternative="larger")
    assert n == math.ceil(nobs1 / bandit_share - 1e-9)


@pytest.mark.parametrize(("bandit", "champion", "share", "deff"), [
    (ArmRewards.binary(0.12), ArmRewards.binary(0.1), 0.3, 1.0),
    (ArmRewards(3.0, 5.0), ArmRewards(2.5, 5.0), 0.5, 1.45),
    (ArmRewards.binary(0.9), ArmRewards.binary(0.6), 0.8, 2.0)])
def test_ab_size_is_the_smallest_reaching_the_half_width(bandit, champion, share, deff):
    z, half = maths.z_value(0.05), 0.02
    n = maths.ab_decisions(bandit, champion, share, half, z, deff)

    def reached(total: int) -> float:  # closed form: z sqrt(deff (sd_b²/n_b + sd_c²/n_c))
        return z * math.sqrt(deff * (bandit.sd**2 / (total * share)
                                     + champion.sd**2 / (total * (1 - share))))

    assert reached(n) <= half < reached(n - 1)


@pytest.mark.parametrize(("epsilon", "actions", "rate"), [
    (0.1, 4, 0.2), (1.0, 2, 0.5), (0.05, 10, 0.03)])
def test_ips_variance_is_the_exact_enumeration(epsilon, actions, rate):
    # Epsilon-greedy logging (greedy action 0), target always action K-1: enumerate
    # (action, reward) and the IPS term r * 1{a = K-1} / p(a).
    probs = [1 - epsilon + epsilon / actions] + [epsilon / actions] * (actions - 1)
    first = second = 0.0
    for action, reward in itertools.product(range(actions), (0, 1)):
        chance = probs[action] * (rate if reward else 1 - rate)
        term = reward * (action == actions - 1) / probs[action]
        first, second = first + chance * term, second + chance * term**2
    got = maths.ips_variance(ArmRewards.binary(rate), epsilon / actions)
    assert got == pytest.approx(second - first**2, rel=1e-12)


def _beta_binomial_arm(rng, units: int, visits: int, rate: float, icc: float) -> RatioStats:
    """Units of `visits` 0/1 rewards each, unit rates Beta with mean `rate` and ICC `icc`."""
    total = 1 / icc - 1  # Beta(a, b) with a + b = total has intraclass correlation icc
    unit_rates = rng.beta(rate * total, (1 - rate) * total, size=units)
    return RatioStats.from_units(np.full(units, visits), rng.binomial(visits, unit_rates))


def test_ab_plan_reaches_the_half_width_with_returning_units():
    rng = np.random.default_rng(7)
    request = parse({**BODY, "expected_reward_rate": 0.2, "lift": 0.1, "ci_half_width": 0.02,
                     "decisions_per_unit": 6, "icc": 0.1,
                     "arms": {"bandit": 0.3, "champion": 0.7}})
    ab = plan(request).ab
    units = {arm: round(ab.decisions_per_arm[arm] / 6) for arm in ("bandit", "champion")}
    widths = []
    for _ in range(300):
        champion = _beta_binomial_arm(rng, units["champion"], 6, 0.2, 0.1)
        bandit = _beta_binomial_arm(rng, units["bandit"], 6, 0.22, 0.1)
        ci = ratio_difference(champion, bandit).ci
        widths.append((ci.upper - ci.lower) / 2)
    assert np.mean(widths) == pytest.approx(0.02, rel=0.02)
    # Without the design effect the plan would be 1.5 times too short: the test can fail.
    assert ab.design_effect == pytest.approx(1.5)


def test_ope_plan_reaches_the_half_width_on_epsilon_greedy_logs():
    rng = np.random.default_rng(11)
    request = parse({**BODY, "actions": 5, "exploration": 0.25, "expected_reward_rate": 0.3,
                     "ci_half_width": 0.05})
    ope = plan(request).ope
    n, probs = ope.logged_decisions, np.array([0.8, 0.05, 0.05, 0.05, 0.05])
    widths = []
    for _ in range(300):
        actions = rng.choice(5, size=n, p=probs)  # greedy action 0; the target plays 4
        rewards = rng.random(n) < 0.3
        terms = rewards * (actions == 4) / probs[actions]
        widths.append(maths.z_value(0.05) * math.sqrt(MeanStats.from_values(terms).mean_variance))
    assert np.mean(widths) == pytest.approx(0.05, rel=0.02)
    assert ope.decisions == math.ceil(n / 0.5)


def test_continuous_rewards_use_reward_sd():
    request = parse({**BODY, "expected_reward_rate": 20.0, "reward_sd": 15.0,
                     "ci_half_width": 1.0})
    ab = plan(request).ab
    assert ab.standard_deviations == {"bandit": 15.0, "champion": 15.0}
    assert ab.decisions == maths.decisions_for(2 * 15.0**2 / 0.5, 1.0, maths.z_value(0.05), 1)


def test_warnings_say_when_a_target_needs_more_than_a_year():
    result = plan(parse({**BODY, "traffic_per_day": 10, "ci_half_width": 0.001}))
    codes = {w.code for w in result.warnings}
    assert {"ab_beyond_a_year", "ope_beyond_a_year"} <= codes
    assert not plan(parse({**BODY, "traffic_per_day": 1e7})).warnings


BAD = [
    ({"traffic_per_day": None}, "traffic_per_day"),
    ({"traffic_per_day": 0}, "traffic_per_day"),
    ({"traffic_per_day": "100"}, "traffic_per_day"),
    ({"actions": 1}, "actions"),
    ({"actions": 2.5}, "actions"),
    ({"actions": True}, "actions"),
    ({"exploration": 0}, "exploration"),
    ({"exploration": 1.5}, "exploration"),
    ({"exploration": "epsilon"}, "exploration"),
    ({"expected_reward_rate": 1.0}, "expected_reward_rate"),
    ({"expected_reward_rate": 0}, "expected_reward_rate"),
    ({"ci_half_width": -0.1}, "ci_half_width"),
    ({"ci_half_width": float("inf")}, "ci_half_width"),
    ({"reward_sd": 0}, "reward_sd"),
    ({"decisions_per_unit": 0.5}, "decisions_per_unit"),
    ({"icc": 1.5}, "icc"),
    ({"alpha": 0.5}, "alpha"),
    ({"alpha": 0}, "alpha"),
    ({"lift": -1}, "lift"),
    ({"lift": 9}, "lift"),  # 0.1 * 10 = 1: not a rate
    ({"arms": [0.5, 0.5]}, "arms"),
    ({"arms": {"bandit": 0.5}}, "arms.champion"),
    ({"arms": {"bandit": 0.0, "champion": 1.0}}, "arms.bandit"),
    ({"arms": {"bandit": 0.5, "champion": 0.6}}, "arms"),
    ({"arms": {"bandit": 0.5, "champion": 0.5, "uniform": 0}}, "arms.uniform"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_values_name_their_field(change, field):
    with pytest.raises(ValidationFailed) as caught:
        parse({**BODY, **change})
    assert caught.value.details[0]["field"] == field


def test_a_target_beyond_any_horizon_is_null_with_a_reason():
    result = plan(parse({**BODY, "exploration": 1e-9, "actions": 10**6,
                         "ci_half_width": 1e-300}))
    assert result.ab.decisions is None and result.ab.reason == "too_many_decisions"
    assert result.ope.days is None and result.ope.reason == "too_many_decisions"
    assert {"ab_beyond_a_year", "ope_beyond_a_year"} <= {w.code for w in result.warnings}


def _positive(high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=0, max_value=high, exclude_min=True)


numbers = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**30, 10**30)
           | st.sampled_from([5e-324, 1e-300, 1e-9, 1e-6, 0.5, 1, 1e6, 1e50, 1e300]))
# Every value in range, extremes included (hypothesis favours the bounds).
VALID = {"traffic_per_day": st.floats(1e-6, 1e300), "actions": st.integers(2, 10**6),
         "exploration": st.floats(1e-9, 1), "ci_half_width": _positive(1e300),
         "expected_reward_rate": st.floats(0, 1, exclude_min=True, exclude_max=True)}
VALID_OPTIONAL = {"decisions_per_unit": st.floats(1, 1e6), "icc": st.floats(0, 1),
                  "alpha": st.floats(0, 0.5, exclude_min=True, exclude_max=True),
                  "lift": st.floats(-1, 1e6, exclude_min=True)}


def _finite_json(request) -> None:
    """The plan as JSON without NaN or Infinity: every number is finite or null."""
    json.dumps(dataclasses.asdict(plan(request)), allow_nan=False)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(body=st.fixed_dictionaries(VALID, optional=VALID_OPTIONAL),
       continuous=st.none() | st.tuples(_positive(1e50), st.floats(-1e50, 1e50)))
def test_any_valid_body_gives_a_finite_plan(body, continuous):
    if continuous is not None:
        body = {**body, "reward_sd": continuous[0], "expected_reward_rate": continuous[1]}
    try:
        request = parse(body)
    except ValidationFailed as failed:  # only a lift that makes a 0/1 rate reach 1
        assert failed.details[0]["field"] == "lift"
        return
    _finite_json(request)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(body=st.fixed_dictionaries({name: numbers | VALID[name] for name in BODY}, optional={
    name: numbers | st.none() for name in ("reward_sd", "decisions_per_unit", "icc",
                                           "alpha", "lift")}))
def test_any_numbers_give_a_400_or_a_finite_plan(body):
    try:
        request = parse(body)
    except ValidationFailed:
        return
    _finite_json(request)
