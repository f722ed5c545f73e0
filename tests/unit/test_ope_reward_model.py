"""Reward model for DM/DR: hashed features, L-BFGS logistic/ridge fits, cross-fitting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, Ridge

from experiments.ope import (
    DR,
    EncodedLog,
    HashingFeaturizer,
    LoggedBatch,
    RewardModelConfig,
    chosen_design,
    cross_fit_q_hat,
    fit_reward_model,
    hash_folds,
    predict_q_hat,
    random_folds,
)

REPO = Path(__file__).resolve().parents[2]
CONTEXT = {
    "seg": "new",
    "hour": 14,
    "ok": True,
    "tags": ["a", "b"],
    "user": {"country": "DE", "age": 30.5},
    "gone": None,
}
ACTIONS = [("hero-1", {"cat": "shoes", "price": 49.0}), ("hero-2", {"cat": "bags"}), "hero-3"]


def small_log(featurizer: HashingFeaturizer, contexts: list[dict[str, object]]) -> EncodedLog:
    table = featurizer.encode_actions(ACTIONS)
    index = table.index([["hero-1", "hero-2", "hero-3"]] * len(contexts))
    return EncodedLog(featurizer.encode_contexts(contexts), table, index)


def test_feature_kinds_and_crosses() -> None:
    featurizer = HashingFeaturizer(n_bits=24)
    log = small_log(featurizer, [CONTEXT])
    design = featurizer.design(log.contexts, log.actions, np.zeros(3, int), np.arange(3)).toarray()
    # context: seg, hour, ok, tags=a, tags=b, user.country, user.age -> 7 features
    # row = 7 context + 1 action id + action features (2, 1, 0) + 7 crosses with the id
    assert [np.count_nonzero(row) for row in design] == [17, 16, 15]
    assert sorted(design[0][design[0] != 0]) == sorted(
        [1.0] * 12 + [14.0] * 2 + [30.5] * 2 + [49.0]
    )
    context_part = design.min(axis=0) > 0  # columns shared by all actions: the context alone
    assert np.count_nonzero(context_part) == 7
    crosses = [set(np.flatnonzero(row)) - set(np.flatnonzero(context_part)) for row in design]
    assert crosses[0].isdisjoint(crosses[1]) and crosses[1].isdisjoint(crosses[2])


def test_numpy_scalars_and_ignored_keys() -> None:
    featurizer = HashingFeaturizer(n_bits=20, ignore=frozenset({"user_id"}))
    plain = featurizer.encode_contexts([{"hour": 14.0, "ok": True}])
    numpy = featurizer.encode_contexts([{"hour": np.float64(14), "ok": np.True_, "user_id": "u-1"}])
    assert plain.hashes.tolist() == numpy.hashes.tolist()
    assert plain.values.tolist() == numpy.values.tolist()


def test_hashing_is_stable_across_processes() -> None:
    """Python's str hash() is salted per process; ours must not be."""
    code = (
        "import json, sys\n"
        "from experiments.ope import HashingFeaturizer\n"
        "rows = HashingFeaturizer(n_bits=18).encode_contexts([json.load(sys.stdin)])\n"
        "print(json.dumps(rows.hashes.tolist()))\n"
    )
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # differs from ours
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(CONTEXT),
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    here = HashingFeaturizer(n_bits=18).encode_contexts([CONTEXT]).hashes.tolist()
    assert done.stdout.strip() == json.dumps(here)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"user": {"geo": {"city": "Berlin"}}}, "nests dicts deeper than one level"),
        ({"hour": float("nan")}, "non-finite number"),
        ({"tags": [1, 2]}, "unsupported value"),
        ({"when": object()}, "unsupported value"),
    ],
)
def test_invalid_contexts_are_named(context: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HashingFeaturizer().encode_contexts([{"ok": "fine"}, context])


def test_invalid_action_tables() -> None:
    featurizer = HashingFeaturizer()
    with pytest.raises(ValueError, match="distinct"):
        featurizer.encode_actions(["a", "a"])
    table = featurizer.encode_actions(["a", "b"])
    with pytest.raises(ValueError, match="unknown action id 'c'"):
        table.index([["a", "c"]])
    assert table.index([["b"], ["a", "b"]]).tolist() == [[1, -1], [0, 1]]


def random_design(rng: np.random.Generator, m: int = 3000, d: int = 60) -> sp.csr_matrix:
    dense = (rng.random((m, d)) < 0.1) * rng.choice([1.0, 2.5, -1.0], size=(m, d))
    dense[:, 0] = rng.normal(5.0, 3.0, m)  # an uncentred numeric feature
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("l2", [0.1, 1.0, 10.0])
def test_logistic_matches_scikit_learn(l2: float) -> None:
    rng = np.random.default_rng(1)
    x = random_design(rng)
    y = (rng.random(x.shape[0]) < 1 / (1 + np.exp(-(x @ rng.normal(0, 0.5, x.shape[1]) - 1)))) * 1.0
    ours = fit_reward_model(x, y, RewardModelConfig(l2=l2, tol=1e-10))
    ref = LogisticRegression(C=1 / l2, tol=1e-12, max_iter=100_000).fit(x, y)
    assert ours.kind == "logistic" and ours.converged
    np.testing.assert_allclose(ours.predict(x), ref.predict_proba(x)[:, 1], atol=1e-5)

    def penalised_loss(w: np.ndarray, b: float) -> float:
        z = x @ w + b
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * l2 * w @ w)

    assert (
        penalised_loss(ours.coef, ours.intercept)
        <= penalised_loss(ref.coef_[0], ref.intercept_[0]) + 1e-9
    )


def test_ridge_matches_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    x = random_design(rng)
    y = x @ rng.normal(size=x.shape[1]) + rng.normal(size=x.shape[0]) + 3.0
    ours = fit_reward_model(x, y, RewardModelConfig(l2=2.0, tol=1e-10))
    ref = Ridge(alpha=2.0, tol=1e-12).fit(x.toarray(), y)
    assert ours.kind == "ridge"
    np.testing.assert_allclose(ours.predict(x), ref.predict(x.toarray()), atol=1e-6)


@pytest.mark.parametrize(
    ("rewards", "config", "message"),
    [
        (np.array([0.0, 0.5]), RewardModelConfig(kind="logistic"), r"rewards in \{0, 1\}"),
        (np.array([0.0, np.nan]), None, "NaN or infinite"),
        (np.array([0.0, 1.0, 1.0]), None, "design has 2 rows"),
        (np.array([]), None, "design has 2 rows"),
    ],
)
def test_reward_model_rejects_bad_input(
    rewards: np.ndarray, config: RewardModelConfig | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_reward_model(sp.csr_matrix(np.eye(2)), rewards, config)
    with pytest.raises(ValueError, match="l2 must be > 0"):
        RewardModelConfig(l2=0.0)


def simulated_log(n: int, rng: np.random.Generator) -> tuple[EncodedLog, np.ndarray, np.ndarray]:
    segments = rng.integers(0, 5, n)
    contexts = [{"segment": f"s{s}", "score": float(s) / 5} for s in segments]
    featurizer = HashingFeaturizer(n_bits=16)
    log = small_log(featurizer, contexts)
    chosen = rng.integers(0, 3, n)
    click = np.array([[0.1, 0.5, 0.3]])[0, chosen] + 0.1 * (segments == chosen)
    return log, chosen, (rng.random(n) < click).astype(float)


def test_cross_fitting_is_out_of_fold_and_chunking_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    featurizer = HashingFeaturizer(n_bits=16)
    log, chosen, rewards = simulated_log(600, rng)
    folds = random_folds(600, 2, rng)
    fit = cross_fit_q_hat(featurizer, log, chosen, rewards, folds, chunk_size=77)
    flipped = np.where(folds == 0, 1.0 - rewards, rewards)  # change only fold 0's rewards
    refit = cross_fit_q_hat(featurizer, log, chosen, flipped, folds)
    np.testing.assert_array_equal(fit.q_hat[folds == 0], refit.q_hat[folds == 0])
    assert not np.allclose(fit.q_hat[folds == 1], refit.q_hat[folds == 1])
    rows = np.arange(600)
    whole = predict_q_hat(featurizer, fit.models[0], log, rows, chunk_size=10_000)
    np.testing.assert_allclose(predict_q_hat(featurizer, fit.models[0], log, rows, 13), whole)
    design = chosen_design(featurizer, log, chosen, rows)
    np.testing.assert_allclose(fit.models[0].predict(design), whole[rows, chosen])


def test_padded_actions_get_zero_predictions_and_feed_dr() -> None:
    featurizer = HashingFeaturizer(n_bits=16)
    table = featurizer.encode_actions(ACTIONS)
    offered = [["hero-1", "hero-2", "hero-3"], ["hero-2", "hero-3"]] * 50
    log = EncodedLog(featurizer.encode_contexts([{"seg": "a"}] * 100), table, table.index(offered))
    chosen = np.tile([0, 1], 50)
    rewards = np.tile([1.0, 0.0], 50)
    fit = cross_fit_q_hat(
        featurizer, log, chosen, rewards, hash_folds([str(i) for i in range(100)])
    )
    assert (fit.q_hat[~log.mask] == 0).all() and (fit.q_hat[log.mask] > 0).all()
    target = np.where(log.mask, 1.0, 0.0) / log.mask.sum(axis=1, keepdims=True)
    batch = LoggedBatch(rewards, 1 / log.mask.sum(axis=1), chosen, target, log.mask, fit.q_hat)
    assert DR().add(batch).get().status == "ok"


def test_folds() -> None:
    keys = [f"obd-men-{i}" for i in range(1000)]
    folds = hash_folds(keys, k=3)
    np.testing.assert_array_equal(folds, hash_folds(keys, k=3))
    assert set(folds.tolist()) == {0, 1, 2} and np.bincount(folds).min() > 250
    balanced = random_folds(1001, 2, np.random.default_rng(0))
    assert sorted(np.bincount(balanced).tolist()) == [500, 501]
    with pytest.raises(ValueError, match="k >= 2"):
        hash_folds(keys, k=1)
    log, chosen, rewards = simulated_log(10, np.random.default_rng(1))
    with pytest.raises(ValueError, match="k >= 2"):
        cross_fit_q_hat(HashingFeaturizer(16), log, chosen, rewards, np.zeros(10, int))
    with pytest.raises(ValueError, match="every fold non-empty"):
        cross_fit_q_hat(HashingFeaturizer(16), log, chosen, rewards, np.full(10, 2))
