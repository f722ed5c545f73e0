"""OPE estimators: hand-computed logs, golden values, bad input, streaming and merging."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from statsmodels.stats.weightstats import DescrStatsW

from experiments.ope import (
    DM,
    DR,
    DROS,
    IPS,
    SNIPS,
    Estimate,
    Interval,
    LoggedBatch,
    PairedDifference,
    SwitchDR,
    WeightDiagnostics,
    difference_to_dict,
    verdict,
)

Z95 = 1.959963984540054

# Four decisions, two actions; the candidate always takes action 0.
# weights w = [2, 0, 4, 0]; rewards r = [1, 0, 0, 0].
TINY = {
    "rewards": [1.0, 0.0, 0.0, 0.0],
    "logged_propensity": [0.5, 0.5, 0.25, 0.75],
    "chosen": [0, 1, 0, 1],
    "target_pmf": [[1.0, 0.0]] * 4,
    "q_hat": [[0.5, 0.2]] * 4,
}


def tiny(**changes: object) -> LoggedBatch:
    return LoggedBatch(**{**TINY, **changes})  # type: ignore[arg-type]


def random_batch(rng: np.random.Generator, n: int = 1000, k: int = 5) -> LoggedBatch:
    """A log with variable action sets (padded, masked), stochastic policies and a q_hat."""
    mask = rng.random((n, k)) < 0.7
    mask[np.arange(n), rng.integers(0, k, n)] = True
    logging = np.where(mask, rng.random((n, k)) + 0.2, 0.0)
    logging /= logging.sum(axis=1, keepdims=True)
    chosen = np.array([rng.choice(k, p=p) for p in logging])
    target = np.where(mask, rng.random((n, k)) ** 3, 0.0)
    target /= target.sum(axis=1, keepdims=True)
    q = np.where(mask, rng.random((n, k)), np.nan)
    rewards = (rng.random(n) < q[np.arange(n), chosen]).astype(float)
    return LoggedBatch(
        rewards=rewards,
        logged_propensity=logging[np.arange(n), chosen],
        chosen=chosen,
        target_pmf=target,
        mask=mask,
        q_hat=q,
    )


@pytest.mark.parametrize(
    ("estimator", "value", "std_error"),
    [
        (IPS(), 0.5, 0.5),  # x = [2, 0, 0, 0]: s^2 = 1, se = sqrt(1 / 4)
        (IPS(clip=1.0), 0.25, 0.25),  # x = [1, 0, 0, 0]
        (IPS(clip=3.0), 0.5, 0.5),  # the clip binds only where r = 0
        (SNIPS(), 1 / 3, math.sqrt(32 / 243)),  # psi = [8/9, 0, -8/9, 0]
        (DM(), 0.5, 0.0),  # q_pi = 0.5 on every row
        (DR(), 0.25, math.sqrt(4.75 / 12)),  # [1.5, 0.5, -1.5, 0.5]
        (SwitchDR(tau=3.0), 0.75, 0.25),  # row 2 (w = 4 > 3) keeps only q_pi
        (DROS(lam=4.0), 0.525, math.sqrt(0.4075 / 12)),  # w: 2 -> 1, 4 -> 0.8
    ],
)
def test_closed_form_values(estimator: IPS, value: float, std_error: float) -> None:
    est = estimator.add(tiny()).get()
    assert est.value == pytest.approx(value, abs=1e-15)
    assert est.std_error == pytest.approx(std_error, abs=1e-15)
    assert est.interval.lower == pytest.approx(value - Z95 * std_error, abs=1e-12)
    assert est.interval.upper == pytest.approx(value + Z95 * std_error, abs=1e-12)
    assert (est.n, est.status, est.method) == (4, "ok", estimator.name)


def test_ips_interval_matches_statsmodels_z_interval() -> None:
    batch = random_batch(np.random.default_rng(1))
    est = IPS().add(batch).get()
    lower, upper = DescrStatsW(batch.weights * batch.rewards).zconfint_mean(alpha=0.05)
    assert (est.interval.lower, est.interval.upper) == pytest.approx((lower, upper), rel=1e-12)


def test_snips_delta_method_is_the_z_interval_of_the_influence_terms() -> None:
    batch = random_batch(np.random.default_rng(2))
    w, r = batch.weights, batch.rewards
    theta = (w @ r) / w.sum()
    influence = theta + (w * r - theta * w) / w.mean()
    lower, upper = DescrStatsW(influence).zconfint_mean(alpha=0.05)
    est = SNIPS().add(batch).get()
    assert est.value == pytest.approx(theta, rel=1e-13)
    assert (est.interval.lower, est.interval.upper) == pytest.approx((lower, upper), rel=1e-12)


def test_diagnostics_closed_form() -> None:
    diag = WeightDiagnostics().add(tiny())
    assert diag.ess == pytest.approx(36 / 20)
    assert (diag.max_w, diag.mean_weight, diag.unsupported_share) == (4.0, 1.5, 0.5)
    assert diag.min_propensity == 0.25
    assert diag.to_dict()["ess"] == pytest.approx(1.8)
    assert WeightDiagnostics().to_dict()["mean_weight"] is None


ESTIMATORS = [IPS(), IPS(clip=2.0), SNIPS(), DM(), DR(), SwitchDR(tau=2.0), DROS(lam=5.0)]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: f"{e.name}")
def test_streaming_and_merging_equal_one_shot(estimator: IPS) -> None:
    batch = random_batch(np.random.default_rng(3))
    one_shot = estimator.add(batch).get()
    streamed = estimator
    for chunk in batch.chunks(137):
        streamed = streamed.add(chunk)
    left = estimator.add(batch.rows(slice(0, 400)))
    right = estimator.add(batch.rows(slice(400, 700))) + estimator.add(batch.rows(slice(700, None)))
    for other in (streamed.get(), (left + right).get(), (right + left).get()):
        assert_estimates_close(other, one_shot, rel=1e-12)


def test_paired_difference_streaming_equals_one_shot() -> None:
    batch = random_batch(np.random.default_rng(4))
    champion = batch.with_target(np.where(batch.mask, 1.0, 0.0) / batch.mask.sum(1, keepdims=True))
    one_shot = PairedDifference(DR()).add(batch, champion).get()
    merged = PairedDifference(DR())
    for start in range(0, batch.n, 300):
        part = slice(start, start + 300)
        merged = merged + PairedDifference(DR()).add(batch.rows(part), champion.rows(part))
    assert_estimates_close(merged.get(), one_shot, rel=1e-12)


def test_bootstrap_is_reproducible_and_chunking_invariant() -> None:
    batch = random_batch(np.random.default_rng(5))
    est = SNIPS(n_bootstrap=500)
    first = est.add(batch, rng=np.random.default_rng(42)).get()
    again = est.add(batch, rng=np.random.default_rng(42)).get()
    rng = np.random.default_rng(42)
    chunked = est
    for chunk in batch.chunks(333):
        chunked = chunked.add(chunk, rng=rng)
    other_seed = est.add(batch, rng=np.random.default_rng(43)).get()
    assert first.bootstrap_interval == again.bootstrap_interval
    got, want = chunked.get().bootstrap_interval, first.bootstrap_interval
    assert got is not None and want is not None
    assert (got.lower, got.upper) == pytest.approx((want.lower, want.upper), rel=1e-12)
    assert other_seed.bootstrap_interval != first.bootstrap_interval


def test_bootstrap_interval_agrees_with_analytic_interval() -> None:
    batch = random_batch(np.random.default_rng(6), n=3000)
    for est in (IPS(n_bootstrap=1000), SNIPS(n_bootstrap=1000), DR(n_bootstrap=1000)):
        got = est.add(batch, rng=np.random.default_rng(7)).get()
        assert got.bootstrap_interval is not None
        assert got.bootstrap_interval.lower == pytest.approx(
            got.interval.lower, abs=0.1 * got.interval.width
        )
        assert got.bootstrap_interval.upper == pytest.approx(
            got.interval.upper, abs=0.1 * got.interval.width
        )


def test_poisson_bootstrap_merges_across_shards() -> None:
    batch = random_batch(np.random.default_rng(8))
    shard_rngs = np.random.default_rng(9).spawn(2)
    a = IPS(n_bootstrap=300).add(batch.rows(slice(0, 500)), rng=shard_rngs[0])
    b = IPS(n_bootstrap=300).add(batch.rows(slice(500, None)), rng=shard_rngs[1])
    merged = (a + b).get()
    assert merged.bootstrap_interval is not None and merged.bootstrap_interval.contains(
        merged.value
    )
    assert merged.n == batch.n


def test_confidence_sequence_is_wider_than_the_interval_and_shrinks() -> None:
    rng = np.random.default_rng(10)
    small, large = random_batch(rng, n=500), random_batch(rng, n=5000)
    for est in (IPS(), SNIPS()):
        for batch in (small, large):
            got = est.add(batch).get()
            seq = got.confidence_sequence
            assert seq is not None and seq.lower < got.interval.lower < got.value
            assert got.interval.upper < seq.upper
        assert (
            est.add(large).get().confidence_sequence.width
            < est.add(small).get().confidence_sequence.width
        )


def test_paired_difference_uses_paired_rows_and_gives_verdicts() -> None:
    n = 2000
    rng = np.random.default_rng(11)
    chosen = rng.integers(0, 2, n)
    rewards = (rng.random(n) < np.where(chosen == 0, 0.6, 0.4)).astype(float)
    log = LoggedBatch(rewards, np.full(n, 0.5), chosen, np.full((n, 2), 0.5))
    best = log.with_target(np.tile([1.0, 0.0], (n, 1)))
    worst = log.with_target(np.tile([0.0, 1.0], (n, 1)))
    better = PairedDifference(SNIPS()).add(best, log).get()
    worse = PairedDifference(SNIPS()).add(worst, log).get()
    same = PairedDifference(SNIPS()).add(log, log).get()
    assert better.value == pytest.approx(
        SNIPS().add(best).get().value - SNIPS().add(log).get().value
    )
    assert verdict(better.interval) == "better" and verdict(worse.interval) == "worse"
    assert (same.value, same.std_error, verdict(same.interval)) == (0.0, 0.0, "inconclusive")
    assert difference_to_dict(better)["verdict"] == "better"
    assert better.method == "snips-diff"


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (Interval(0.01, 0.2), "better"),
        (Interval(-0.2, -0.01), "worse"),
        (Interval(-0.1, 0.1), "inconclusive"),
        (Interval(0.0, 0.1), "inconclusive"),
        (Interval.undefined(), "inconclusive"),
    ],
)
def test_verdict(interval: Interval, expected: str) -> None:
    assert verdict(interval) == expected


def test_report_shapes_and_degenerate_statuses() -> None:
    est = IPS().add(tiny()).get()
    assert est.to_dict() == {
        "value": 0.5,
        "ci_low": est.interval.lower,
        "ci_high": est.interval.upper,
    }
    assert est.to_dict("bootstrap") == {"value": 0.5, "ci_low": None, "ci_high": None}
    empty = IPS().get()
    assert (empty.status, empty.to_dict()["value"]) == ("empty", None)
    one = IPS().add(tiny().rows(slice(0, 1))).get()
    assert (one.status, one.value, one.to_dict()["ci_low"]) == ("too_few_rows", 2.0, None)
    zero_w = SNIPS().add(tiny().with_target(np.tile([0.0, 1.0], (4, 1))).rows([0, 2])).get()
    assert zero_w.status == "zero_denominator"
    assert math.isnan(zero_w.value) and verdict(zero_w.interval) == "inconclusive"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rewards": [1.0, np.nan, 0.0, 0.0]}, "rewards: row 1 is not finite"),
        ({"rewards": [1.0, 0.0, 0.0]}, "rewards must have shape (n,) = (4,)"),
        (
            {"logged_propensity": [0.0, 0.5, 0.25, 0.75]},
            "logged_propensity: row 0 is outside (0, 1]",
        ),
        ({"logged_propensity": [0.5, 1.5, 0.25, 0.75]}, "logged_propensity: row 1 is outside"),
        ({"logged_propensity": [0.5, 0.5, np.nan, 0.75]}, "logged_propensity: row 2 is outside"),
        ({"chosen": [0, 2, 0, 1]}, "chosen: row 1 is outside [0, 2)"),
        ({"chosen": [0, -1, 0, 1]}, "chosen: row 1 is outside"),
        ({"chosen": [0.0, 1.0, 0.0, 1.0]}, "chosen must hold integer action columns"),
        ({"chosen": [True, False, True, False]}, "chosen must hold integer action columns"),
        ({"target_pmf": [1.0, 0.0, 1.0, 0.0]}, "target_pmf must be 2-D"),
        ({"target_pmf": [[1.0, 0.0]] * 3 + [[0.9, 0.0]]}, "target_pmf: row 3 does not sum to 1"),
        ({"target_pmf": [[1.5, -0.5]] * 4}, "target_pmf: row 0 has a negative"),
        ({"target_pmf": [[np.nan, 1.0]] * 4}, "target_pmf: row 0 contains NaN"),
        ({"mask": [[True, False]] * 4}, "chosen: row 1 is an action outside the mask"),
        ({"mask": [[False, True]] * 4}, "chosen: row 0 is an action outside the mask"),
        ({"mask": [[1, 1]] * 4}, "mask must be boolean"),
        ({"mask": [[True, True]] * 3}, "mask must be boolean of shape (4, 2)"),
        ({"q_hat": [[0.5, np.nan]] * 4}, "q_hat: row 0 is NaN or infinite"),
        ({"q_hat": [[0.5]] * 4}, "q_hat must have shape (4, 2)"),
    ],
)
def test_invalid_inputs_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny(**changes)


def test_pmf_outside_mask_is_rejected() -> None:
    with pytest.raises(ValueError, match="target_pmf: row 0 puts probability outside the mask"):
        tiny(
            chosen=[1, 1, 1, 1],
            mask=[[False, True]] * 4,
            target_pmf=[[0.5, 0.5]] * 4,
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: IPS(clip=0.0), "clip must be > 0"),
        (lambda: IPS(level=1.0), "level must be in (0, 1)"),
        (lambda: SNIPS(n_bootstrap=-1), "n_bootstrap must be >= 0"),
        (lambda: SNIPS(design_n=0), "design_n must be >= 1"),
        (lambda: SwitchDR(tau=-1.0), "tau must be >= 0"),
        (lambda: DROS(lam=0.0), "lam must be > 0"),
        (lambda: DM().add(tiny(q_hat=None)), "needs q_hat"),
        (lambda: IPS(n_bootstrap=10).add(tiny()), "pass rng="),
        (lambda: IPS().add(tiny()) + IPS(clip=2.0).add(tiny()), "different settings"),
        (lambda: IPS() + SNIPS(), "different settings"),
        (lambda: PairedDifference(IPS()).add(tiny(), tiny(rewards=[0.0] * 4)), "same logged rows"),
        (lambda: list(tiny().chunks(0)), "chunk size must be >= 1"),
    ],
)
def test_invalid_settings_and_calls(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()  # type: ignore[operator]


def assert_estimates_close(a: Estimate, b: Estimate, rel: float) -> None:
    assert (a.n, a.status, a.method) == (b.n, b.status, b.method)
    assert a.value == pytest.approx(b.value, rel=rel, abs=1e-15)
    assert a.std_error == pytest.approx(b.std_error, rel=rel, abs=1e-15)
    for x, y in ((a.interval, b.interval), (a.confidence_sequence, b.confidence_sequence)):
        assert x is not None and y is not None
        assert (x.lower, x.upper) == pytest.approx((y.lower, y.upper), rel=rel, abs=1e-15)
