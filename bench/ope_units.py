"""Coverage of OPE intervals on returning units: per-decision (before) vs clustered (after).

Traffic shaped like a personalization experiment: each unit (customer) has a segment, its
own click propensity p_u ~ Beta(0.5, 4.5) (skewed, mean 0.1) and a geometric number of
visits (mean 8); the click probability of action a is min(1, p_u * m[segment, a]). The
logging policy (min probability 0.1) and the target policy depend on the segment. The
true value of a policy on NEW units is known exactly (Beta integrals), so each replication
checks whether the 95% interval covers it. DR uses a fixed, deliberately wrong reward
model (0.8 x the true segment-action means), so it is unbiased but not perfect.

Before: the decisions treated as independent (``add(batch)``). After: per-unit sums
(``add(batch, units=...)``), i.e. cluster-robust by unit.

Second table: the A/B-vs-OPE check (:mod:`experiments.ope.agreement`). A bandit arm serves
the target policy to its own units; its randomized value (ratio of per-unit sums) is
compared with the OPE estimate of the target on the champion arm's log. With correct
propensities the flag should fire at about 1 - level = 5%; with a wrong logged propensity
(that of the action the target favours halved) IPS is biased and the flag should fire
most of the time with IPS; SNIPS and DR (with a decent reward model) are little affected.

    .venv/bin/python -m bench.ope_units                 # 2,000 replications, the table
    .venv/bin/python -m bench.ope_units --reps 300      # quicker
    .venv/bin/python -m bench.ope_units --memory        # the report's per-unit state
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from experiments.abstats.ratio import RatioStats
from experiments.ope import (
    DR,
    IPS,
    SNIPS,
    LoggedBatch,
    PairedDifference,
    RatioEstimator,
    UnitCodes,
    UnitSums,
)
from experiments.ope.agreement import compare

K, SEGMENTS = 4, 4
BETA_A, BETA_B = 0.5, 4.5
MEAN_VISITS = 8.0


@dataclass(frozen=True)
class World:
    """Segment x action multipliers and the policies (all ``(SEGMENTS, K)``)."""

    multiplier: np.ndarray
    logging: np.ndarray
    target: np.ndarray
    champion: np.ndarray

    def mean_rate(self) -> np.ndarray:
        """E[min(1, p m)] for p ~ Beta(a, b), per (segment, action)."""
        c = 1.0 / self.multiplier
        below = BETA_A / (BETA_A + BETA_B) * stats.beta.cdf(c, BETA_A + 1, BETA_B)
        return self.multiplier * below + stats.beta.sf(c, BETA_A, BETA_B)

    def value(self, policy: np.ndarray) -> float:
        """Value per decision on new units (visits are independent of the rates)."""
        return float(np.mean(np.sum(policy * self.mean_rate(), axis=1)))


def make_world(seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    multiplier = rng.uniform(0.5, 2.0, size=(SEGMENTS, K))
    soft = rng.dirichlet(np.ones(K), size=SEGMENTS)
    logging = 0.6 * soft + 0.4 / K  # >= 0.1
    best = multiplier.argmax(axis=1)
    target = np.full((SEGMENTS, K), 0.1)
    target[np.arange(SEGMENTS), best] = 1 - 0.1 * (K - 1)
    return World(multiplier, logging, target, np.full((SEGMENTS, K), 1.0 / K))


@dataclass(frozen=True)
class Log:
    """One simulated log: the target-policy batch, each row's unit and segment."""

    batch: LoggedBatch
    units: np.ndarray
    segment: np.ndarray


def draw(world: World, rng: np.random.Generator, n_units: int,
         propensity_error: float = 1.0) -> Log:
    """One log of ``n_units`` returning units.

    ``propensity_error`` multiplies the logged propensity of the action the target policy
    favours in the unit's segment (1.0: correct).
    """
    visits = rng.geometric(1.0 / MEAN_VISITS, size=n_units)
    units = np.repeat(np.arange(n_units), visits)
    segment = rng.integers(0, SEGMENTS, size=n_units)[units]
    p_unit = rng.beta(BETA_A, BETA_B, size=n_units)[units]
    cdf = np.cumsum(world.logging[segment], axis=1)
    chosen = np.minimum((rng.random(units.size)[:, None] > cdf).sum(axis=1), K - 1)
    rate = np.minimum(1.0, p_unit * world.multiplier[segment, chosen])
    rewards = (rng.random(units.size) < rate).astype(float)
    propensity = world.logging[segment, chosen]
    favoured = world.target.argmax(axis=1)[segment]
    propensity = np.where(chosen == favoured, np.minimum(1.0, propensity * propensity_error),
                          propensity)
    q_hat = 0.8 * world.mean_rate()[segment]
    batch = LoggedBatch(rewards=rewards, logged_propensity=propensity, chosen=chosen,
                        target_pmf=world.target[segment], q_hat=q_hat)
    return Log(batch, units, segment)


ESTIMATORS: dict[str, RatioEstimator] = {"ips": IPS(), "snips": SNIPS(), "dr": DR()}


def replicate(world: World, rng: np.random.Generator, n_units: int) -> dict[str, np.ndarray]:
    """Whether each interval covered the truth: ``{name: [before, after]}``."""
    log = draw(world, rng, n_units)
    batch, units = log.batch, log.units
    truth = world.value(world.target)
    out = {}
    for name, template in ESTIMATORS.items():
        before = template.add(batch).get().interval
        after = template.add(batch, units=units).get().interval
        out[name] = np.array([before.lower <= truth <= before.upper,
                              after.lower <= truth <= after.upper])
    champion = batch.with_target(world.champion[log.segment])
    diff_truth = truth - world.value(world.champion)
    paired = PairedDifference(DR())
    before = paired.add(batch, champion).get().interval
    after = paired.add(batch, champion, units=units).get().interval
    out["dr-diff"] = np.array([before.lower <= diff_truth <= before.upper,
                               after.lower <= diff_truth <= after.upper])
    return out


def coverage(reps: int, n_units: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """Coverage ``{name: [before, after]}`` over ``reps`` replications."""
    world = make_world()
    rng = np.random.default_rng(seed)
    totals: dict[str, np.ndarray] = {}
    for _ in range(reps):
        for name, hit in replicate(world, rng, n_units).items():
            totals[name] = totals.get(name, np.zeros(2)) + hit
    return {name: total / reps for name, total in totals.items()}


def ab_stats(world: World, rng: np.random.Generator, n_units: int) -> RatioStats:
    """The bandit arm's randomized value: its own units serve the target policy."""
    log = draw(replace(world, logging=world.target), rng, n_units)
    decisions = np.bincount(log.units, minlength=n_units)
    rewards = np.bincount(log.units, weights=log.batch.rewards, minlength=n_units)
    return RatioStats.from_units(decisions[decisions > 0], rewards[decisions > 0])


def disagreement(reps: int, n_units: int = 300, propensity_error: float = 1.0,
                 seed: int = 0) -> dict[str, float]:
    """How often A/B (bandit arm) and OPE (champion arm's log) are flagged as disagreeing,
    per OPE estimator; ``propensity_error`` != 1 logs wrong propensities (see :func:`draw`)."""
    world = make_world()
    rng = np.random.default_rng(seed)
    flags = dict.fromkeys(ESTIMATORS, 0)
    for _ in range(reps):
        ab = ab_stats(world, rng, n_units)
        log = draw(world, rng, n_units, propensity_error)
        for name, template in ESTIMATORS.items():
            ope = template.add(log.batch, units=log.units).get()
            flags[name] += compare(ab, ope).disagree
    return {name: count / reps for name, count in flags.items()}


def unit_state_memory(units: int, visits: int = 8, policies: int = 3) -> dict[str, float]:
    """Traced memory of the report's per-unit state (:class:`UnitCodes` plus 6 estimators'
    :class:`UnitSums` per policy) after ``units * visits`` decisions of returning units."""
    tracemalloc.start()
    codes, sums = UnitCodes(), [UnitSums(2) for _ in range(6 * policies)]
    rng = np.random.default_rng(0)
    chunk = 20_000
    for _ in range(0, units * visits, chunk):
        rows = codes.named([f"user-{u}" for u in rng.integers(0, units, chunk)])
        for state in sums:
            state.add(rows, np.ones((chunk, 2)))
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"units": codes.count, "mib": current / 2**20, "bytes_per_unit": current / codes.count}


def unit_state_cpu(units: int = 125_000, decisions: int = 1_000_000) -> dict[str, float]:
    """CPU seconds of the per-unit bookkeeping for ``decisions`` (no tracemalloc): coding
    the unit ids (once per pass) and one :class:`UnitSums` (per estimator and policy)."""
    rng = np.random.default_rng(0)
    chunk = 20_000
    ids = [f"user-{u}" for u in rng.integers(0, units, decisions)]
    columns = rng.random((decisions, 2))
    started = time.process_time()
    codes = UnitCodes()
    rows = np.concatenate([codes.named(ids[s:s + chunk]) for s in range(0, decisions, chunk)])
    coding = time.process_time() - started
    started = time.process_time()
    state = UnitSums(2)
    for s in range(0, decisions, chunk):
        state.add(rows[s:s + chunk], columns[s:s + chunk])
    return {"coding": coding, "per_estimator": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory", action="store_true",
                        help="only measure the per-unit state of a report (100k, 1M units)")
    args = parser.parse_args()
    if args.memory:
        print("| units (8 decisions each) | per-unit state, 3 policies (MiB) | bytes per unit |")
        print("|---:|---:|---:|")
        for units in (100_000, 1_000_000):
            got = unit_state_memory(units)
            print(f"| {got['units']:,.0f} | {got['mib']:.0f} | {got['bytes_per_unit']:.0f} |")
        cpu = unit_state_cpu()
        print(f"\nCPU for 1M decisions of 125k units: unit ids coded {cpu['coding']:.2f} s "
              f"(once per pass), per-unit sums {cpu['per_estimator']:.3f} s per estimator and "
              f"policy ({18 * cpu['per_estimator']:.1f} s for 3 policies x 6 estimators)")
        return
    result = coverage(args.reps, args.units, args.seed)
    print(f"{args.reps} replications, {args.units} units x geometric visits (mean "
          f"{MEAN_VISITS:g}), p_u ~ Beta({BETA_A}, {BETA_B}); nominal 95%")
    print("| estimator | per-decision (before) | clustered by unit (after) |")
    print("|---|---|---|")
    for name, (before, after) in result.items():
        print(f"| {name} | {before:.1%} | {after:.1%} |")
    print()
    print("A/B (bandit arm, its own units) vs OPE (champion arm's log): share of "
          f"replications flagged as disagreeing, {args.units} units per arm")
    print("| logged propensity of the favoured action | ips | snips | dr |")
    print("|---|---|---|---|")
    for error in (1.0, 0.5):
        flags = disagreement(args.reps, args.units, error, args.seed)
        label = "correct" if error == 1.0 else f"x{error:g} (wrong)"
        print(f"| {label} | " + " | ".join(f"{flags[n]:.1%}" for n in ESTIMATORS) + " |")


if __name__ == "__main__":
    main()
