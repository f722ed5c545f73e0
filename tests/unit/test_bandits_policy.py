"""Policies, pmf checks, and deterministic sampling."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import stats

from bandits.exploration import vw_arguments
from bandits.features import FeatureError
from bandits.policy import (
    FixedPolicy,
    PolicyError,
    UniformPolicy,
    VWPolicy,
    checked_pmf,
    rng_for,
    sample_index,
    uniform_for,
)

ACTIONS = [("hero-1", {"cat": "shoes"}), ("hero-2", {"cat": "bags"}), ("hero-3", {})]


def test_uniform_policy() -> None:
    assert UniformPolicy().pmf({}, ACTIONS) == pytest.approx([1 / 3] * 3)
    assert UniformPolicy().name == "uniform"
    with pytest.raises(ValueError):
        UniformPolicy().pmf({}, [])


def test_fixed_policy_is_one_hot_or_uniform_when_not_offered() -> None:
    policy = FixedPolicy("hero-2")
    assert policy.name == "fixed:hero-2"
    assert policy.pmf({}, ACTIONS) == [0.0, 1.0, 0.0]
    assert policy.pmf({}, [ACTIONS[0], ACTIONS[2]]) == [0.5, 0.5]


def test_vw_policy_pmf_matches_offered_actions() -> None:
    policy = VWPolicy(vw_arguments("squarecb", {}), version=3)
    assert policy.version == 3 and policy.name == "model:3"
    for count in (1, 2, 3):
        pmf = policy.pmf({"user": {"seg": "new"}}, ACTIONS[:count])
        assert len(pmf) == count and sum(pmf) == pytest.approx(1, abs=1e-9)
    with pytest.raises(FeatureError):
        policy.pmf({"x": float("nan")}, ACTIONS)
    with pytest.raises(ValueError):
        policy.pmf({}, [])


def test_vw_policy_is_usable_from_threads() -> None:
    policy = VWPolicy(vw_arguments("epsilon", {}))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(200):
                assert len(policy.pmf({"i": i}, ACTIONS)) == 3
        except BaseException as error:  # collected for the main thread
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    "values",
    [[0.5, 0.6], [1.0, 1.0], [0.5], [float("nan"), 1.0], [-0.1, 1.1], [0.0, 0.0], []],
)
def test_checked_pmf_rejects_non_pmfs(values: list[float]) -> None:
    with pytest.raises(PolicyError):
        checked_pmf(values, 2)


def test_checked_pmf_renormalizes_float_drift() -> None:
    pmf = checked_pmf([0.3333333432674408] * 3, 3)
    assert sum(pmf) == pytest.approx(1, abs=1e-12)
    assert checked_pmf([1.0000001, -1e-12], 2) == [1.0, 0.0]


def test_rng_for_is_stable_and_salted() -> None:
    first = rng_for("e-1").random(3)
    assert np.array_equal(first, rng_for("e-1").random(3))
    assert not np.array_equal(first, rng_for("e-2").random(3))
    assert not np.array_equal(first, rng_for("e-1", salt="exp-a").random(3))
    # A golden value: the seed is SHA-256, so this never changes across processes.
    assert rng_for("e-1").integers(1 << 30) == 967654388
    assert rng_for("e-1", salt="exp-a").integers(1 << 30) == 159284281


def test_sample_index_is_deterministic_per_event_id() -> None:
    pmf = [0.1, 0.2, 0.7]
    for i in range(50):
        event = f"event-{i}"
        assert sample_index(pmf, rng_for(event)) == sample_index(pmf, rng_for(event))


def test_sample_index_matches_pmf_frequencies() -> None:
    pmf = [0.05, 0.0, 0.15, 0.3, 0.5]
    n = 20_000
    counts = np.bincount(
        [sample_index(pmf, rng_for(f"id-{i}", salt="chi")) for i in range(n)], minlength=5
    )
    assert counts[1] == 0
    observed = counts[[0, 2, 3, 4]]
    expected = n * np.array([0.05, 0.15, 0.3, 0.5])
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_sample_index_edge_cases() -> None:
    rng = np.random.default_rng(0)
    assert sample_index([1.0], rng) == 0
    assert all(sample_index([0.0, 1.0, 0.0], rng) == 1 for _ in range(100))
    assert sample_index([1.0, 1e-9], np.random.default_rng(1)) == 0
    for bad in ([], [0.0, 0.0], [-0.5, 1.5], [float("nan")], [[0.5, 0.5]]):
        with pytest.raises(ValueError):
            sample_index(bad, rng)


def test_uniform_for_is_stable_salted_and_uniform() -> None:
    assert uniform_for("e-1") == uniform_for("e-1")
    assert uniform_for("e-1") != uniform_for("e-2")
    assert uniform_for("e-1") != uniform_for("e-1", salt="exp-a")
    # Golden values: SHA-256 based, so the same in every process and release.
    assert uniform_for("e-1") == 0.47364982422732904
    assert uniform_for("e-1", salt="exp-a") == 0.5792762128129898
    draws = np.array([uniform_for(f"u-{i}") for i in range(20_000)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert stats.kstest(draws, "uniform").pvalue > 1e-4


def test_sample_index_with_a_uniform_draw_inverts_the_cdf() -> None:
    pmf = [0.25, 0.0, 0.25, 0.5]
    assert sample_index(pmf, 0.0) == 0
    assert sample_index(pmf, 0.2499) == 0
    assert sample_index(pmf, 0.25) == 2  # never the zero-probability action
    assert sample_index(pmf, 0.4999) == 2
    assert sample_index(pmf, 0.5) == 3
    assert sample_index(pmf, 1.0 - 2**-53) == 3
    assert sample_index([2.0, 2.0], 0.5) == 1  # unnormalized weights
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError):
            sample_index(pmf, bad)
