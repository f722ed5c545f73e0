"""Simulations with known truth: interval coverage, anytime validity and RMSE of OPE.

A synthetic contextual bandit with 10 equally likely contexts and 4 actions whose click
probabilities mu(x, a) are known, so every policy's true value is
V(pi) = mean_x sum_a pi(a|x) mu(x, a). Logs of all repetitions are drawn at once
(vectorised over repetitions); each repetition is then evaluated by the library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from experiments.ope import (
    DR,
    IPS,
    SNIPS,
    EncodedLog,
    HashingFeaturizer,
    LoggedBatch,
    PairedDifference,
    RatioEstimator,
    cross_fit_q_hat,
    random_folds,
)

N_CONTEXTS, N_ACTIONS = 10, 4


@dataclass(frozen=True)
class Environment:
    mu: np.ndarray  # (C, K) click probability
    logging: np.ndarray  # (C, K) logging policy, every entry >= 0.1
    target: np.ndarray  # (C, K) candidate policy
    champion: np.ndarray  # (C, K) champion policy (uniform)

    def value(self, policy: np.ndarray) -> float:
        return float(np.mean(np.sum(policy * self.mu, axis=1)))

    def draw(self, rng: np.random.Generator, reps: int, n: int) -> dict[str, np.ndarray]:
        """Logs of ``reps`` repetitions at once, each array ``(reps, n)``."""
        x = rng.integers(0, N_CONTEXTS, size=(reps, n))
        cdf = np.cumsum(self.logging, axis=1)[x]
        a = np.minimum((rng.random((reps, n))[..., None] > cdf).sum(axis=-1), N_ACTIONS - 1)
        r = (rng.random((reps, n)) < self.mu[x, a]).astype(float)
        return {"x": x, "a": a, "r": r, "p": self.logging[x, a]}


def make_environment(polarised: bool = False) -> Environment:
    """Click probabilities in [0.05, 0.6], or (polarised) each 0.05 or 0.9, so that
    rewards are nearly determined by (context, action) and a good model removes most noise."""
    rng = np.random.default_rng(2024)
    mu = rng.uniform(0.05, 0.6, size=(N_CONTEXTS, N_ACTIONS))
    if polarised:
        mu = np.where(mu > np.median(mu), 0.9, 0.05)
    logits = rng.normal(size=(N_CONTEXTS, N_ACTIONS))
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    logging = 0.4 * soft + 0.6 / N_ACTIONS  # min probability 0.15
    target = np.full((N_CONTEXTS, N_ACTIONS), 0.1)
    target[np.arange(N_CONTEXTS), mu.argmax(axis=1)] = 0.7
    return Environment(mu, logging, target, np.full((N_CONTEXTS, N_ACTIONS), 1 / N_ACTIONS))


ENV = make_environment()


def batch(
    logs: dict[str, np.ndarray], i: int, policy: np.ndarray, q_table: np.ndarray
) -> LoggedBatch:
    x = logs["x"][i]
    return LoggedBatch(
        rewards=logs["r"][i],
        logged_propensity=logs["p"][i],
        chosen=logs["a"][i],
        target_pmf=policy[x],
        q_hat=q_table[x],
    )


@pytest.fixture(scope="module")
def coverage_runs() -> dict[str, np.ndarray]:
    """Per repetition: values and 95% analytic bounds of IPS, SNIPS, DR and the paired diff."""
    reps, n = 2000, 1000
    logs = ENV.draw(np.random.default_rng(7), reps, n)
    # A good but imperfect reward model, fixed in advance (not fitted on these logs).
    q_good = np.clip(ENV.mu + np.random.default_rng(8).normal(0, 0.03, ENV.mu.shape), 0, 1)
    out: dict[str, list[tuple[float, float, float]]] = {}
    estimators: dict[str, RatioEstimator] = {"ips": IPS(), "snips": SNIPS(), "dr": DR()}
    for i in range(reps):
        candidate = batch(logs, i, ENV.target, q_good)
        for name, estimator in estimators.items():
            est = estimator.add(candidate).get()
            out.setdefault(name, []).append((est.value, est.interval.lower, est.interval.upper))
        diff = PairedDifference(SNIPS()).add(
            candidate, candidate.with_target(ENV.champion[logs["x"][i]])
        )
        d = diff.get()
        out.setdefault("diff", []).append((d.value, d.interval.lower, d.interval.upper))
    return {name: np.array(rows) for name, rows in out.items()}


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "diff"])
def test_analytic_intervals_cover_95_percent(
    coverage_runs: dict[str, np.ndarray], name: str
) -> None:
    truth = ENV.value(ENV.target)
    if name == "diff":
        truth -= ENV.value(ENV.champion)
    runs = coverage_runs[name]
    coverage = np.mean((runs[:, 1] <= truth) & (truth <= runs[:, 2]))
    assert 0.93 <= coverage <= 0.97, f"{name}: coverage {coverage:.3f} over {len(runs)} reps"


def test_ips_and_dr_are_unbiased_and_dr_has_lower_rmse(
    coverage_runs: dict[str, np.ndarray],
) -> None:
    truth = ENV.value(ENV.target)
    rmse = {}
    for name in ("ips", "dr"):
        values = coverage_runs[name][:, 0]
        standard_error = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - truth) < 4 * standard_error, name
        rmse[name] = np.sqrt(np.mean((values - truth) ** 2))
    assert rmse["dr"] < 0.85 * rmse["ips"], rmse


@pytest.mark.parametrize(
    "estimator", [IPS(design_n=2000), SNIPS(design_n=2000)], ids=["ips", "snips"]
)
def test_confidence_sequence_stays_valid_under_continuous_monitoring(
    estimator: RatioEstimator,
) -> None:
    """Checked after every 500 rows up to 5,000: the asymptotic confidence sequence misses
    the truth at *some* look in at most ~5% of repetitions; the CLT interval, peeked at
    as often, misses far more often (the reason confidence sequences exist)."""
    reps, n, step = 500, 5000, 500
    logs = ENV.draw(np.random.default_rng(9), reps, n)
    truth = ENV.value(ENV.target)
    q_none = np.zeros_like(ENV.mu)
    missed = {"sequence": 0, "interval": 0}
    for i in range(reps):
        looks = {"sequence": False, "interval": False}
        est = estimator
        for chunk in batch(logs, i, ENV.target, q_none).chunks(step):
            got = (est := est.add(chunk)).get()
            assert got.confidence_sequence is not None
            looks["sequence"] |= not got.confidence_sequence.contains(truth)
            looks["interval"] |= not got.interval.contains(truth)
        for kind, miss in looks.items():
            missed[kind] += miss
    assert missed["sequence"] / reps <= 0.05, missed
    assert missed["interval"] / reps >= 0.12, missed


def test_cross_fitted_dr_beats_ips_with_the_hashed_reward_model() -> None:
    """End to end: JSON-like contexts, hashed features, 2-fold cross-fitting, then DR.

    Few repetitions (each fits two models), so rather than a noisy RMSE over 8 runs we
    check what drives it: the cross-fitted model is close to the truth, DR's standard
    error is far below IPS's in every run, and DR's errors are of the size it claims."""
    env, reps, n = make_environment(polarised=True), 8, 2000
    logs = env.draw(np.random.default_rng(10), reps, n)
    featurizer = HashingFeaturizer(n_bits=16)
    table = featurizer.encode_actions([f"item-{a}" for a in range(N_ACTIONS)])
    index = np.tile(np.arange(N_ACTIONS), (n, 1))
    truth = env.value(env.target)
    dr_errors = []
    for i in range(reps):
        x = logs["x"][i]
        contexts = [{"segment": f"s{v}", "user": {"active": bool(v % 2)}} for v in x]
        log = EncodedLog(featurizer.encode_contexts(contexts), table, index)
        folds = random_folds(n, 2, np.random.default_rng(i))
        fit = cross_fit_q_hat(featurizer, log, logs["a"][i], logs["r"][i], folds)
        assert np.abs(fit.q_hat - env.mu[x]).mean() < 0.1
        candidate = LoggedBatch(
            logs["r"][i], logs["p"][i], logs["a"][i], env.target[x], q_hat=fit.q_hat
        )
        ips, dr = IPS().add(candidate).get(), DR().add(candidate).get()
        assert dr.std_error < 0.6 * ips.std_error
        dr_errors.append((dr.value - truth) / dr.std_error)
    assert np.sqrt(np.mean(np.square(dr_errors))) < 2.0, dr_errors
