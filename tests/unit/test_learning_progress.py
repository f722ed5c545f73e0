"""Progressive-validation statistics: sums that add, a sliding window, the comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments.learning.join import joined_reward, learnable
from experiments.learning.progress import (
    Bucket,
    Observation,
    Progress,
    Sums,
    compare,
    snips,
)


def test_sums_match_numpy() -> None:
    values = [0.5, 2.0, -1.0, 3.25]
    sums = Sums()
    for value in values:
        sums = sums.add(value)
    assert sums.n == 4 and sums.mean == pytest.approx(np.mean(values))
    assert sums.variance == pytest.approx(np.var(values, ddof=1))
    assert Sums().mean is None and Sums().add(1.0).variance is None
    assert Sums(1, 1.0, 1.0) + Sums(2, 3.0, 5.0) == Sums(3, 4.0, 6.0)


def test_bucket_terms_are_ips_terms() -> None:
    o = Observation(arm="bandit", reward=2.0, propensity=0.5, model_probability=0.25,
                    champion_probability=1.0)
    bucket = Bucket().observe(o)
    assert bucket.bandit.total == 2.0 and bucket.champion.n == 0
    assert bucket.model_ips.total == pytest.approx(2.0 * 0.25 / 0.5)
    assert bucket.champion_ips.total == pytest.approx(2.0 * 1.0 / 0.5)
    assert bucket.difference.total == pytest.approx(2.0 * (0.25 - 1.0) / 0.5)
    assert snips(bucket) == pytest.approx(2.0)
    unpaired = Bucket().observe(Observation("champion", 1.0, 1.0, 0.5, None))
    assert unpaired.difference.n == 0 and unpaired.model_ips.n == 1
    assert unpaired.champion.total == 1.0


def test_window_slides_by_buckets_and_totals_keep_everything() -> None:
    progress = Progress(window=100)
    for index in range(250):
        progress = progress.observe(Observation("bandit", float(index), 1.0, 1.0, 1.0))
    assert progress.total.n == 250
    recent = progress.recent()
    assert recent.n == 100  # ten full buckets of 10 and an empty open one
    assert recent.bandit.mean == pytest.approx(np.mean(np.arange(150, 250)))


def test_json_round_trip_and_a_new_window_restarts_the_window() -> None:
    progress = Progress(window=20)
    for index in range(33):
        progress = progress.observe(Observation("champion", index % 2, 0.5, 0.2, 0.7))
    restored = Progress.from_json(progress.to_json(), window=20)
    assert restored == progress
    resized = Progress.from_json(progress.to_json(), window=50)
    assert resized.total == progress.total and resized.recent().n == 0
    assert Progress.from_json(None).total.n == 0


def test_comparison_interval_is_the_normal_interval_of_the_paired_terms() -> None:
    rng = np.random.default_rng(7)
    bucket = Bucket()
    terms = []
    for _ in range(400):
        reward, q, c, p = float(rng.random() < 0.3), rng.random(), rng.random(), 0.5
        bucket = bucket.observe(Observation("bandit", reward, p, q, c))
        terms.append(reward * (q - c) / p)
    result = compare(bucket, alpha=0.05)
    half = stats.norm.ppf(0.975) * np.std(terms, ddof=1) / math.sqrt(len(terms))
    assert result.diff == pytest.approx(np.mean(terms))
    assert result.ci_low == pytest.approx(np.mean(terms) - half)
    assert result.ci_high == pytest.approx(np.mean(terms) + half)


@pytest.mark.parametrize("model,champion,verdict", [(0.9, 0.1, "better"),
                                                    (0.1, 0.9, "worse"),
                                                    (0.5, 0.5, "inconclusive")])
def test_comparison_verdicts(model: float, champion: float, verdict: str) -> None:
    bucket = Bucket()
    for index in range(200):
        bucket = bucket.observe(Observation("bandit", float(index % 2), 0.5, model, champion))
    if verdict == "inconclusive":
        bucket = bucket.observe(Observation("bandit", 1.0, 0.5, 0.6, 0.5))
    assert compare(bucket, 0.05).verdict == verdict


def test_small_samples_are_insufficient() -> None:
    bucket = Bucket().observe(Observation("bandit", 1.0, 0.5, 1.0, 0.0))
    result = compare(bucket, 0.05)
    assert result.verdict == "insufficient_data" and result.ci_low is None


@pytest.mark.parametrize("phase,arm,expected", [
    ("online", "bandit", True), ("online", "champion", True), ("online", "fixed:a", True),
    ("apprentice", "champion", True), ("apprentice", "bandit", False),
    ("paused", "champion", False), ("paused", "bandit", False)])
def test_which_decisions_are_learned(phase: str, arm: str, expected: bool) -> None:
    assert learnable(phase, arm) is expected


def test_joined_reward_uses_the_default_only_when_nothing_came() -> None:
    assert joined_reward(None, -0.5) == -0.5
    assert joined_reward(0.0, -0.5) == 0.0
    assert joined_reward(3.0, 0.0) == 3.0
