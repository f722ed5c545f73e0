"""MeanStats: construction from SQL aggregates or arrays, addition, moments."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.abstats import MeanStats

values = st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=40)
PROFILE = settings(database=None, deadline=None, max_examples=150)


def test_from_aggregates_accepts_sql_types() -> None:
    assert MeanStats.from_aggregates(3, Decimal("6"), Decimal("14")) == MeanStats(3, 6.0, 14.0)
    assert MeanStats.from_aggregates(0, None, None) == MeanStats.empty()
    assert MeanStats.from_aggregates(None, None, None).n == 0


def test_moments_match_numpy() -> None:
    x = np.random.default_rng(1).normal(10.0, 2.0, 1000)
    s = MeanStats.from_values(x)
    assert math.isclose(s.mean, x.mean(), rel_tol=1e-12)
    assert math.isclose(s.variance, x.var(ddof=1), rel_tol=1e-9)
    assert math.isclose(s.mean_variance, x.var(ddof=1) / x.size, rel_tol=1e-9)


def test_constant_values_have_exactly_zero_variance() -> None:
    assert MeanStats.from_values([0.1] * 1000).variance == 0.0
    assert MeanStats.from_values([1e6 + 0.3] * 77).variance == 0.0


def test_undefined_moments_are_nan() -> None:
    assert math.isnan(MeanStats.empty().mean)
    assert math.isnan(MeanStats.from_values([1.0]).variance)


def test_sum_builtin_and_binary_check() -> None:
    days = [MeanStats(10, 3.0, 3.0), MeanStats(5, 1.0, 1.0)]
    assert sum(days) == MeanStats(15, 4.0, 4.0)
    sum(days).require_binary()


@PROFILE
@given(values, values)
def test_addition_equals_concatenation(a: list[float], b: list[float]) -> None:
    left = MeanStats.from_values(a) + MeanStats.from_values(b)
    both = MeanStats.from_values(a + b)
    assert left.n == both.n
    assert math.isclose(left.total, both.total, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(left.total_sq, both.total_sq, rel_tol=1e-9, abs_tol=1e-6)
    assert MeanStats.from_values(a) + MeanStats.empty() == MeanStats.from_values(a)
