"""A/B statistics on simulated returning units, with known truth: before and after.

Each replication is a two-arm experiment over ``days`` days: ``units`` units are assigned
to an arm with probability 1/2 each (as Tailor's per-unit assignment does), visit a
geometric number of times (mean ``visits``) on uniformly random days, and click with their
own rate drawn from Beta(0.5, 4.5) (mean 0.1); in the treatment arm the rate is
multiplied by ``1 + effect``. The same simulated logs are analysed two ways:

* **before**: every decision an independent observation (the old report: two-proportion
  z-test over decisions, sequential test on daily decision increments, SRM on decisions);
* **after**: the unit-level analysis of the report (ratio metrics with delta-method
  variances, :func:`experiments.reports.comparisons.compare_units`; the sequential test
  on cumulative unit statistics; SRM on units).

Printed per analysis: the A/A false-positive rate of the fixed-horizon test at the end,
the A/A rate of the always-valid test under daily peeking (significant at any day), the
SRM alarm rate at p < 0.001, and, with a true effect, the coverage of the 95% interval
of the difference. Run::

    .venv/bin/python -m bench.ab_simulation --reps 4000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats

from experiments.abstats import (
    MeanStats,
    RatioStats,
    compare_proportions,
    sequential_cumulative,
    sequential_path,
    srm_test,
)
from experiments.abstats.guards import SRM_THRESHOLD
from experiments.reports.comparisons import BURN_IN, burn_in, compare_units

ALPHA = 0.05
SHARES = {"champion": 0.5, "bandit": 0.5}


@dataclass(frozen=True, slots=True)
class Setup:
    """One simulated design (see the module docstring)."""

    units: int = 1000
    visits: float = 9.0
    days: int = 14
    effect: float = 0.0


@dataclass(frozen=True, slots=True)
class Rates:
    """Shares of replications, for one analysis."""

    fixed_fpr: float
    sequential_fpr: float
    srm_alarms: float
    coverage: float | None


def true_diff(effect: float) -> float:
    """Treatment minus control of the clicks per decision: E[min(r(1+e), 1)] - E[r]."""
    beta = stats.beta(0.5, 4.5)
    treated, _ = integrate.quad(lambda r: min(r * (1 + effect), 1.0) * beta.pdf(r), 0, 1,
                                limit=200)
    return treated - beta.mean()


@dataclass(frozen=True, slots=True)
class Log:
    """One replication's decisions: unit, arm (0 control, 1 treatment), day, click."""

    unit: np.ndarray
    arm_of_unit: np.ndarray
    day: np.ndarray
    click: np.ndarray


def simulate(rng: np.random.Generator, s: Setup) -> Log:
    arm = (rng.random(s.units) < 0.5).astype(int)
    rate = rng.beta(0.5, 4.5, s.units) * np.where(arm == 1, 1 + s.effect, 1.0)
    visits = rng.geometric(1 / s.visits, s.units)
    unit = np.repeat(np.arange(s.units), visits)
    day = rng.integers(0, s.days, unit.size)
    click = (rng.random(unit.size) < np.minimum(rate[unit], 1.0)).astype(float)
    return Log(unit, arm, day, click)


def _unit_looks(log: Log, s: Setup, arm: int) -> list[RatioStats]:
    """Cumulative unit-level statistics of one arm at the end of each day."""
    keep = log.arm_of_unit[log.unit] == arm
    unit, day, click = log.unit[keep], log.day[keep], log.click[keep]
    x = np.zeros((s.units, s.days))
    y = np.zeros((s.units, s.days))
    np.add.at(x, (unit, day), 1.0)
    np.add.at(y, (unit, day), click)
    cx, cy = np.cumsum(x, axis=1), np.cumsum(y, axis=1)
    looks = []
    for d in range(s.days):
        seen = cx[:, d] > 0
        looks.append(RatioStats.from_units(cx[seen, d], cy[seen, d]))
    return looks


def _decision_days(log: Log, s: Setup, arm: int) -> list[MeanStats]:
    keep = log.arm_of_unit[log.unit] == arm
    day, click = log.day[keep], log.click[keep]
    n = np.bincount(day, minlength=s.days)
    ones = np.bincount(day, weights=click, minlength=s.days)
    return [MeanStats(int(a), float(b), float(b)) for a, b in zip(n, ones, strict=True)]


def _decision_burn_in(c: list[MeanStats], t: list[MeanStats]
                      ) -> tuple[list[MeanStats], list[MeanStats]]:
    """The old burn-in: merge daily increments until both arms hold BURN_IN decisions."""
    seen_c = seen_t = 0
    for i, (a, b) in enumerate(zip(c, t, strict=True)):
        seen_c, seen_t = seen_c + a.n, seen_t + b.n
        if min(seen_c, seen_t) >= BURN_IN:
            return [sum(c[:i + 1], MeanStats.empty()), *c[i + 1:]], \
                [sum(t[:i + 1], MeanStats.empty()), *t[i + 1:]]
    return [sum(c, MeanStats.empty())], [sum(t, MeanStats.empty())]


def before(log: Log, s: Setup, truth: float) -> tuple[bool, bool, bool, bool]:
    """Decision-level analysis: fixed significant, sequential significant, SRM, covered."""
    c_days, t_days = _decision_days(log, s, 0), _decision_days(log, s, 1)
    c, t = sum(c_days, MeanStats.empty()), sum(t_days, MeanStats.empty())
    r = compare_proportions(c, t, alpha=ALPHA)
    path = sequential_path(*_decision_burn_in(c_days, t_days), alpha=ALPHA)
    seq = path[-1].p_value is not None and path[-1].p_value < ALPHA
    srm = srm_test({"champion": c.n, "bandit": t.n}, SHARES).mismatch
    covered = r.ci is not None and r.ci.lower <= truth <= r.ci.upper
    return bool(r.p_value is not None and r.p_value < ALPHA), seq, srm, covered


def after(log: Log, s: Setup, truth: float) -> tuple[bool, bool, bool, bool]:
    """Unit-level analysis of the report, same outputs as :func:`before`."""
    c_looks, t_looks = _unit_looks(log, s, 0), _unit_looks(log, s, 1)
    r = compare_units(c_looks[-1], t_looks[-1], True, ALPHA)
    path = sequential_cumulative(*burn_in(c_looks, t_looks), alpha=ALPHA)
    seq = path[-1].p_value is not None and path[-1].p_value < ALPHA
    srm = srm_test({"champion": c_looks[-1].n, "bandit": t_looks[-1].n}, SHARES).mismatch
    covered = r.ci is not None and r.ci.lower <= truth <= r.ci.upper
    return bool(r.p_value is not None and r.p_value < ALPHA), seq, srm, covered


def run(reps: int, seed: int = 2026, setup: Setup | None = None,
        effect: float = 0.1) -> dict[str, Rates]:
    """A/A rates and coverage with ``effect`` for both analyses, ``reps`` replications each."""
    s = setup or Setup()
    rng = np.random.default_rng(seed)
    found = {}
    truth = true_diff(effect)
    for name, analyse in (("before", before), ("after", after)):
        aa = np.array([analyse(simulate(rng, s), s, 0.0) for _ in range(reps)])
        ab_setup = Setup(s.units, s.visits, s.days, effect)
        ab = np.array([analyse(simulate(rng, ab_setup), ab_setup, truth)[3]
                       for _ in range(reps)])
        found[name] = Rates(float(aa[:, 0].mean()), float(aa[:, 1].mean()),
                            float(aa[:, 2].mean()), float(ab.mean()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--visits", type=float, default=9.0)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    setup = Setup(args.units, args.visits)
    started = time.perf_counter()
    found = run(args.reps, args.seed, setup)
    print(f"{args.reps} replications per cell; {args.units} units, geometric visits mean "
          f"{args.visits:g} over {setup.days} days, unit rates Beta(0.5, 4.5); "
          f"alpha {ALPHA}, SRM at p < {SRM_THRESHOLD:g}; coverage with a +10% effect")
    print(f"{'analysis':<10} {'A/A fixed':>10} {'A/A seq (daily peeks)':>22} "
          f"{'SRM alarms':>11} {'CI coverage':>12}")
    for name, r in found.items():
        print(f"{name:<10} {r.fixed_fpr:>10.4f} {r.sequential_fpr:>22.4f} "
              f"{r.srm_alarms:>11.4f} {r.coverage or 0:>12.4f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
