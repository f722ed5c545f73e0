"""Sequential (always-valid) inference: mSPRT p-values and confidence sequences."""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.abstats import (
    MeanStats,
    compare_means,
    mixing_variance,
    sequential_path,
    sequential_test,
)

PROFILE = settings(database=None, deadline=None, max_examples=150)


def daily(rng: np.random.Generator, mean: float, days: int = 10) -> list[MeanStats]:
    return [MeanStats.from_values(rng.normal(mean, 1.0, 50)) for _ in range(days)]


def test_mixture_likelihood_ratio_by_hand() -> None:
    rng = np.random.default_rng(3)
    c = MeanStats.from_values(rng.normal(0, 1, 300))
    t = MeanStats.from_values(rng.normal(0.2, 1, 300))
    d, s2 = t.mean - c.mean, c.mean_variance + t.mean_variance
    tau2 = 0.1**2 * (c.variance + t.variance) / 2
    assert math.isclose(mixing_variance(c, t, 0.1), tau2)
    lr = math.sqrt(s2 / (s2 + tau2)) * math.exp(tau2 * d**2 / (2 * s2 * (s2 + tau2)))
    r = sequential_test(c, t, alpha=0.05, effect_size=0.1)
    assert math.isclose(r.p_value, min(1.0, 1 / lr), rel_tol=1e-12)


@PROFILE
@given(
    st.floats(-0.5, 0.5),
    st.floats(0.2, 5.0),
    st.integers(5, 5000),
    st.floats(0.01, 0.2),
)
def test_confidence_sequence_excludes_zero_iff_sequential_p_below_alpha(
    shift: float, sd: float, n: int, alpha: float
) -> None:
    c = MeanStats(n, 0.0, sd**2 * (n - 1))
    t = MeanStats(n, shift * n, sd**2 * (n - 1) + n * shift**2)
    r = sequential_test(c, t, alpha=alpha)
    margin = min(abs(r.ci.lower), abs(r.ci.upper))
    if margin > 1e-9 * (1 + abs(shift)):
        assert (not r.ci.contains(0.0)) == (r.p_value < alpha)


def test_sequential_is_more_conservative_than_fixed_horizon() -> None:
    rng = np.random.default_rng(5)
    c = MeanStats.from_values(rng.normal(0, 1, 2000))
    t = MeanStats.from_values(rng.normal(0.1, 1, 2000))
    r = compare_means(c, t)
    assert r.p_value_sequential >= r.p_value
    assert r.ci_sequential.lower < r.ci.lower and r.ci.upper < r.ci_sequential.upper


def test_path_accumulates_and_takes_running_minimum() -> None:
    rng = np.random.default_rng(11)
    control, treatment = daily(rng, 0.0), daily(rng, 0.3)
    path = sequential_path(control, treatment)
    looks = [
        sequential_test(c, t)
        for c, t in zip(accumulate(control), accumulate(treatment), strict=True)
    ]
    running = np.minimum.accumulate([look.p_value for look in looks])
    assert [r.p_value for r in path] == list(running)
    assert [r.ci for r in path] == [look.ci for look in looks]
    assert path[-1].p_value < 0.05


def test_larger_effect_size_trades_early_for_late_power() -> None:
    c = MeanStats(200, 0.0, 199.0)
    t = MeanStats(200, 0.3 * 200, 199.0 + 200 * 0.3**2)
    narrow = sequential_test(c, t, effect_size=0.05).p_value
    wide = sequential_test(c, t, effect_size=1.0).p_value
    tuned = sequential_test(c, t, effect_size=0.3).p_value
    assert tuned < narrow and tuned < wide
