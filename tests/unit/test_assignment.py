"""Sticky, share-respecting arm assignment."""

import collections

import pytest
from scipy import stats

from experiments.assignment import assign_arm, unit_position


def test_same_unit_same_arm():
    shares = {"champion": 0.5, "bandit": 0.5}
    assert all(assign_arm("e", f"u{i}", shares) == assign_arm("e", f"u{i}", shares)
               for i in range(200))


def test_zero_share_arm_never_assigned():
    shares = {"champion": 0.0, "bandit": 1.0}
    assert {assign_arm("e", f"u{i}", shares) for i in range(500)} == {"bandit"}


def test_shares_are_respected():
    shares = {"champion": 0.2, "bandit": 0.5, "uniform": 0.3}
    counts = collections.Counter(assign_arm("exp", f"u{i}", shares) for i in range(20000))
    observed = [counts[a] for a in shares]
    expected = [20000 * s for s in shares.values()]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_experiments_are_independent():
    a = [unit_position("exp-a", f"u{i}") < 0.5 for i in range(4000)]
    b = [unit_position("exp-b", f"u{i}") < 0.5 for i in range(4000)]
    agreement = sum(x == y for x, y in zip(a, b, strict=True)) / 4000
    assert agreement == pytest.approx(0.5, abs=0.04)


def test_no_positive_share_is_an_error():
    with pytest.raises(ValueError):
        assign_arm("e", "u", {"champion": 0.0})
