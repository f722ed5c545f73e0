"""Token buckets (app.ratelimit) with an injected clock."""

from __future__ import annotations

import pytest

from app.ratelimit import Limit, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("spec, expected", [
    (None, None), ("", None), ("0", None), (0, None), ("-5", None),
    ("10", Limit(10.0, 20.0)), (10, Limit(10.0, 20.0)), ("0.5", Limit(0.5, 1.0)),
    ("100/300", Limit(100.0, 300.0)), ({"rate": 5, "burst": 7}, Limit(5.0, 7.0)),
    ({"rate": 0}, None),
])
def test_parse(spec, expected):
    assert Limit.parse(spec) == expected


@pytest.mark.parametrize("spec", ["fast", "10/x", "10/0.5"])
def test_parse_rejects(spec):
    with pytest.raises(ValueError):
        Limit.parse(spec)


def test_burst_then_steady_rate():
    clock = FakeClock()
    limiter = RateLimiter({"rank": Limit(10, 5)}, clock=clock)
    waits = [limiter.check("k", "rank")[0] for _ in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] == pytest.approx(0.1)
    clock.now += 0.1  # one token back
    assert limiter.check("k", "rank")[0] == 0.0
    assert limiter.check("k", "rank")[0] > 0
    clock.now += 100  # refills to the burst, never above
    assert sum(limiter.check("k", "rank")[0] == 0.0 for _ in range(10)) == 5


def test_keys_and_kinds_are_separate_and_unlimited_kinds_pass():
    clock = FakeClock()
    limiter = RateLimiter({"rank": Limit(1, 1), "reward": None}, clock=clock)
    assert limiter.check("a", "rank")[0] == 0.0
    assert limiter.check("a", "rank")[0] > 0
    assert limiter.check("b", "rank")[0] == 0.0
    assert all(limiter.check("a", "reward") == (0.0, None) for _ in range(100))


def test_per_key_overrides_win():
    clock = FakeClock()
    limiter = RateLimiter({"rank": Limit(1, 1)}, clock=clock)
    override = {"rank": {"rate": 100, "burst": 3}}
    assert [limiter.check("a", "rank", override)[0] == 0.0 for _ in range(4)] == \
        [True, True, True, False]
    assert all(limiter.check("b", "rank", {"rank": {"rate": 0}})[0] == 0.0 for _ in range(9))


def test_bucket_count_is_bounded():
    limiter = RateLimiter({"rank": Limit(1, 1)}, clock=FakeClock(), max_buckets=10)
    for i in range(50):
        limiter.check(f"k{i}", "rank")
    assert len(limiter._buckets) == 10
