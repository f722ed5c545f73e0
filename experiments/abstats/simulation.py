"""Simulations with known truth: interval coverage and false positives under peeking.

Experiments are simulated through their sufficient statistics (exact for normal data:
the sample mean is normal and the sum of squared deviations is ``sigma**2`` times a
chi-square; binomial counts for 0/1 data), so thousands of repetitions are evaluated at
once by the vectorised formulas in :mod:`core`. The test suite asserts on these numbers
and benchmarks or the README can print them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import core
from .sequential import DEFAULT_EFFECT_SIZE

Array = core.Array


@dataclass(frozen=True, slots=True)
class Scenario:
    """A two-arm experiment with known means (and standard deviations for normal data)."""

    name: str
    binary: bool
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    sd_control: float = 1.0
    sd_treatment: float = 1.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("aa_normal_n30", False, 30, 30, 1.0, 1.0),
    Scenario("ab_normal_unequal_var", False, 40, 160, 5.0, 5.5, 1.0, 3.0),
    Scenario("ab_normal_skewed_n", False, 500, 100, 2.0, 2.2, 2.0, 1.0),
    Scenario("aa_binary", True, 2000, 2000, 0.1, 0.1),
    Scenario("ab_binary_unequal_n", True, 1000, 3000, 0.1, 0.13),
    Scenario("ab_binary_rare", True, 5000, 5000, 0.02, 0.025),
)


@dataclass(frozen=True, slots=True)
class CoverageResult:
    """Share of repetitions whose interval covered the true value."""

    scenario: str
    reps: int
    diff: float
    lift: float
    sequential: float


@dataclass(frozen=True, slots=True)
class PeekingRates:
    """Share of A/A experiments declared significant at any of ``looks`` looks."""

    sequential: float
    fixed_horizon: float
    reps: int
    looks: int
    alpha: float


def simulate_sums(
    rng: np.random.Generator, n: int, mean: float, sd: float, binary: bool, size: tuple[int, ...]
) -> tuple[Array, Array]:
    """Arrays of ``(total, total_sq)`` for groups of ``n`` observations."""
    if binary:
        ones = rng.binomial(n, mean, size).astype(float)
        return ones, ones
    means = rng.normal(mean, sd / np.sqrt(n), size)
    squares = sd**2 * rng.chisquare(n - 1, size)
    return n * means, squares + n * means**2


def ci_coverage(
    scenario: Scenario, rng: np.random.Generator, *, reps: int = 4000, alpha: float = 0.05
) -> CoverageResult:
    """Coverage of the difference, lift and confidence-sequence intervals at one look.

    Examples:
        >>> s = Scenario("demo", False, 50, 50, 1.0, 1.2)
        >>> 0.9 < ci_coverage(s, np.random.default_rng(0), reps=500).diff < 1.0
        True
    """
    c, t = (
        _arm_arrays(scenario, rng, (reps,), control=True),
        _arm_arrays(scenario, rng, (reps,), control=False),
    )
    true_diff = scenario.mean_treatment - scenario.mean_control
    true_lift = scenario.mean_treatment / scenario.mean_control - 1
    diff_lo, diff_hi = _diff_interval(scenario.binary, c, t, alpha)
    lift = core.relative_lift(t.mean, t.var / t.n, c.mean, c.var / c.n, alpha)
    se2 = t.var / t.n + c.var / c.n
    tau2 = DEFAULT_EFFECT_SIZE**2 * (t.var + c.var) / 2
    _, half = core.msprt(t.mean - c.mean, se2, tau2, alpha)
    return CoverageResult(
        scenario.name,
        reps,
        diff=_share((diff_lo <= true_diff) & (true_diff <= diff_hi)),
        lift=_share((lift.lower <= true_lift) & (true_lift <= lift.upper)),
        sequential=_share(np.abs(t.mean - c.mean - true_diff) <= half),
    )


def peeking_false_positive_rates(
    rng: np.random.Generator,
    *,
    reps: int = 4000,
    looks: int = 30,
    n_per_look: int = 200,
    alpha: float = 0.05,
    binary: bool = False,
) -> PeekingRates:
    """False-positive rate of A/A tests checked after every look (e.g. daily).

    Each look adds ``n_per_look`` observations per arm (normal with mean 1 and sd 1, or
    0/1 with rate 0.1). An experiment is a false positive if the fixed-horizon Welch
    p-value, or the sequential (mSPRT) p-value, is below ``alpha`` at any look.

    Examples:
        >>> r = peeking_false_positive_rates(np.random.default_rng(0), reps=1000)
        >>> r.sequential < 0.05 < r.fixed_horizon
        True
    """
    mean = 0.1 if binary else 1.0
    arms = []
    for _ in range(2):
        total, total_sq = simulate_sums(rng, n_per_look, mean, 1.0, binary, (reps, looks))
        n = n_per_look * np.arange(1, looks + 1, dtype=float)
        arms.append(_Arm.from_sums(n, np.cumsum(total, axis=1), np.cumsum(total_sq, axis=1)))
    c, t = arms
    fixed = core.welch(t.mean, t.var, t.n, c.mean, c.var, c.n, alpha).p_value
    tau2 = DEFAULT_EFFECT_SIZE**2 * (t.var + c.var) / 2
    sequential, _ = core.msprt(t.mean - c.mean, t.var / t.n + c.var / c.n, tau2, alpha)
    return PeekingRates(
        sequential=_share((sequential < alpha).any(axis=1)),
        fixed_horizon=_share((fixed < alpha).any(axis=1)),
        reps=reps,
        looks=looks,
        alpha=alpha,
    )


@dataclass(frozen=True, slots=True)
class _Arm:
    n: Array
    total: Array
    mean: Array
    var: Array

    @classmethod
    def from_sums(cls, n: Array, total: Array, total_sq: Array) -> _Arm:
        var = (total_sq - total**2 / n) / (n - 1)
        return cls(np.broadcast_to(n, total.shape), total, total / n, var)


def _arm_arrays(
    scenario: Scenario, rng: np.random.Generator, size: tuple[int, ...], *, control: bool
) -> _Arm:
    s = scenario
    n, mean, sd = (
        (s.n_control, s.mean_control, s.sd_control)
        if control
        else (s.n_treatment, s.mean_treatment, s.sd_treatment)
    )
    total, total_sq = simulate_sums(rng, n, mean, sd, s.binary, size)
    return _Arm.from_sums(np.full(size, float(n)), total, total_sq)


def _diff_interval(binary: bool, c: _Arm, t: _Arm, alpha: float) -> tuple[Array, Array]:
    if binary:
        return core.newcombe(t.total, t.n, c.total, c.n, alpha)
    est = core.welch(t.mean, t.var, t.n, c.mean, c.var, c.n, alpha)
    return est.lower, est.upper


def _share(hits: np.ndarray | np.bool_) -> float:
    return float(np.mean(hits))


def main(seed: int = 2024, reps: int = 4000) -> None:
    """Print coverage per scenario and peeking false-positive rates (``python -m ...``)."""
    rng = np.random.default_rng(seed)
    print(f"{'scenario':24} {'diff':>6} {'lift':>6} {'seq':>6}  (coverage, {reps} reps)")
    for scenario in SCENARIOS:
        r = ci_coverage(scenario, rng, reps=reps)
        print(f"{r.scenario:24} {r.diff:6.3f} {r.lift:6.3f} {r.sequential:6.3f}")
    for binary in (False, True):
        p = peeking_false_positive_rates(rng, reps=reps, binary=binary)
        kind = "binary" if binary else "normal"
        print(
            f"A/A {kind}, {p.looks} looks: false positives sequential {p.sequential:.4f}, "
            f"fixed-horizon {p.fixed_horizon:.4f} (alpha {p.alpha})"
        )


if __name__ == "__main__":
    main()
