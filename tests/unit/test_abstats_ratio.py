"""Unit-level ratio statistics: golden values against statsmodels' cluster-robust OLS.

Convention matched: statsmodels' default cluster correction ``G/(G-1) * (N-1)/(N-k)``
(``use_correction=True``); for an intercept-only regression ``k = 1``, so the factor is
``G/(G-1)`` -- the delta method with ``ddof=1`` over units (CR1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from experiments.abstats import MeanStats, Reason, compare_means
from experiments.abstats.ratio import RatioStats, ratio_difference

TOL = 1e-9


def close(a: float | None, b: float, tol: float = TOL) -> bool:
    return a is not None and math.isclose(a, float(b), rel_tol=tol, abs_tol=tol)


def decisions(rng: np.random.Generator, units: int, mean_visits: float,
              binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decision-level (unit id, reward) with returning units and their own rates."""
    visits = rng.geometric(1 / mean_visits, units)
    unit = np.repeat(np.arange(units), visits)
    rate = np.repeat(rng.beta(0.5, 4.5, units), visits)
    reward = (rng.random(unit.size) < rate).astype(float) if binary else rng.gamma(2.0, rate)
    return unit, reward


def aggregate(unit: np.ndarray, reward: np.ndarray) -> RatioStats:
    x = np.bincount(unit).astype(float)
    y = np.bincount(unit, weights=reward)
    keep = x > 0
    return RatioStats.from_units(x[keep], y[keep])


def cluster_fit(unit: np.ndarray, reward: np.ndarray, **kwds: bool) -> tuple[float, float]:
    fit = sm.OLS(reward, np.ones((reward.size, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": unit, **kwds})
    return float(fit.params[0]), float(fit.bse[0])


CASES = [(1, 60, 9.0, True), (2, 300, 8.0, True), (3, 45, 10.0, False), (4, 500, 2.0, False)]


@pytest.mark.parametrize(("seed", "units", "visits", "binary"), CASES)
def test_delta_method_se_equals_statsmodels_cluster_ols(seed: int, units: int, visits: float,
                                                       binary: bool) -> None:
    unit, reward = decisions(np.random.default_rng(seed), units, visits, binary)
    s = aggregate(unit, reward)
    mean, se = cluster_fit(unit, reward)
    assert s.decisions == reward.size
    assert close(s.mean, mean) and close(s.se, se)


@pytest.mark.parametrize(("seed", "units", "visits", "binary"), CASES)
def test_difference_se_is_the_two_clustered_arms(seed: int, units: int, visits: float,
                                                 binary: bool) -> None:
    rng = np.random.default_rng(seed)
    (uc, rc), (ut, rt) = (decisions(rng, units, visits, binary) for _ in range(2))
    d = ratio_difference(aggregate(uc, rc), aggregate(ut, rt))
    (mc, sc), (mt, st) = cluster_fit(uc, rc), cluster_fit(ut, rt)
    assert close(d.diff, mt - mc) and close(d.se, math.hypot(sc, st))
    # Pooled regression on arm dummies clustered by unit, no small-sample factor:
    # each arm's variance without its G/(G-1).
    x = np.column_stack([np.r_[np.ones(rc.size), np.zeros(rt.size)],
                         np.r_[np.zeros(rc.size), np.ones(rt.size)]])
    groups = np.r_[uc, ut + uc.max() + 1]
    fit = sm.OLS(np.r_[rc, rt], x).fit(cov_type="cluster",
                                       cov_kwds={"groups": groups, "use_correction": False})
    gc, gt = len(np.unique(uc)), len(np.unique(ut))
    var = aggregate(uc, rc).mean_variance * (gc - 1) / gc
    var += aggregate(ut, rt).mean_variance * (gt - 1) / gt
    contrast = np.array([-1.0, 1.0])
    assert close(var, contrast @ fit.cov_params() @ contrast)


def test_lift_se_is_the_delta_method() -> None:
    rng = np.random.default_rng(5)
    c = aggregate(*decisions(rng, 400, 8.0, True))
    t = aggregate(*decisions(rng, 400, 8.0, True))
    d = ratio_difference(c, t, alpha=0.1)
    rc, rt = c.mean, t.mean
    expected = math.sqrt(t.mean_variance / rc**2 + rt**2 * c.mean_variance / rc**4)
    assert close(d.lift, rt / rc - 1) and close(d.lift_se, expected)
    z = 1.6448536269514722
    assert close(d.lift_ci.lower, d.lift - z * expected) and d.lift_ci.level == 0.9


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_one_decision_per_unit_reduces_to_welch(alpha: float) -> None:
    rng = np.random.default_rng(11)
    yc, yt = rng.exponential(2.0, 300), rng.exponential(2.4, 250)
    mc, mt = MeanStats.from_values(yc), MeanStats.from_values(yt)
    rc, rt = RatioStats.from_mean_stats(mc), RatioStats.from_mean_stats(mt)
    assert close(rc.sum_y2, RatioStats.from_units(np.ones(300), yc).sum_y2) and rc.one_per_unit
    assert close(rc.variance, mc.variance) and close(rc.mean_variance, mc.mean_variance)
    old = compare_means(mc, mt, alpha=alpha)
    new = ratio_difference(rc, rt, alpha=alpha)
    assert close(new.diff, old.diff) and close(new.p_value, old.p_value)
    assert close(new.ci.lower, old.ci.lower) and close(new.ci.upper, old.ci.upper)
    assert close(new.lift, old.lift)
    assert close(new.lift_ci.lower, old.lift_ci.lower)
    assert close(new.lift_ci.upper, old.lift_ci.upper)
    # The ratio statistics also plug into the mean-based functions unchanged.
    again = compare_means(rc, rt, alpha=alpha)  # type: ignore[arg-type]
    assert close(again.p_value, old.p_value)


def test_interval_is_t_over_units_as_statsmodels_cluster_ols() -> None:
    unit, reward = decisions(np.random.default_rng(9), 80, 9.0, True)
    s = aggregate(unit, reward)
    fit = sm.OLS(reward, np.ones((reward.size, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": unit}, use_t=True)
    (low, high), = fit.conf_int(0.05)
    ci = s.interval(0.05)
    assert ci is not None and close(ci.lower, low) and close(ci.upper, high)


def test_per_unit_mean_and_addition() -> None:
    a = RatioStats.from_units([2, 3], [1.0, 2.0])
    b = RatioStats.from_units([1], [4.0])
    assert a + b == RatioStats.from_units([2, 3, 1], [1.0, 2.0, 4.0])
    assert sum([a, b]) == a + b and a + RatioStats.empty() == a
    assert (a + b).per_unit().mean == pytest.approx(7 / 3)
    assert (a + b).per_unit().one_per_unit and not (a + b).one_per_unit


@pytest.mark.parametrize(("control", "treatment", "reason"), [
    (RatioStats.empty(), RatioStats.from_units([1, 2], [0.0, 1.0]), Reason.EMPTY),
    (RatioStats.from_units([3], [1.0]), RatioStats.from_units([1, 2], [0.0, 1.0]),
     Reason.SINGLE_OBSERVATION),
    (RatioStats.from_units([1, 2], [1.0, 2.0]), RatioStats.from_units([2, 2], [0.0, 0.0]),
     Reason.ZERO_VARIANCE),
])
def test_degenerate_pairs_have_reasons(control: RatioStats, treatment: RatioStats,
                                       reason: Reason) -> None:
    d = ratio_difference(control, treatment)
    assert d.reason is reason and d.p_value is None and d.ci is None


def test_zero_control_keeps_the_difference() -> None:
    d = ratio_difference(RatioStats.from_units([1, 2], [0.0, 0.0]),
                         RatioStats.from_units([1, 2], [1.0, 0.0]))
    assert d.reason is Reason.ZERO_CONTROL_MEAN and d.lift is None and d.p_value is not None


@pytest.mark.parametrize("bad", [
    dict(n=-1, sum_x=0.0, sum_x2=0.0, sum_y=0.0, sum_y2=0.0, sum_xy=0.0),
    dict(n=0, sum_x=1.0, sum_x2=1.0, sum_y=0.0, sum_y2=0.0, sum_xy=0.0),
    dict(n=2, sum_x=2.0, sum_x2=2.0, sum_y=math.nan, sum_y2=0.0, sum_xy=0.0),
    dict(n=2, sum_x=2.0, sum_x2=-2.0, sum_y=0.0, sum_y2=0.0, sum_xy=0.0),
])
def test_inconsistent_sums_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RatioStats(**bad)  # type: ignore[arg-type]
