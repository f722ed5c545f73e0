"""Degenerate data give reason codes and JSON-safe fields (None, never NaN), never raise."""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments.abstats import (
    MeanStats,
    Reason,
    compare_means,
    compare_proportions,
    holm,
    minimum_detectable_lift,
    power_at_lift,
    sample_size_per_arm,
    sequential_path,
    sequential_test,
    srm_test,
    summarize,
)

EMPTY = MeanStats.empty()
ONE = MeanStats.from_values([2.0])
FLAT2 = MeanStats.from_values([2.0] * 5)
FLAT3 = MeanStats.from_values([3.0] * 8)
ZEROS = MeanStats.from_values([0.0] * 6)
SPREAD = MeanStats.from_values([1.0, 2.0, 4.0, 7.0])
CENTRED = MeanStats.from_values([-1.0, 1.0, -2.0, 2.0])
SINGLE = Reason.SINGLE_OBSERVATION


def bern(ones: int, n: int) -> MeanStats:
    return MeanStats(n, float(ones), float(ones))


def json_safe(result: object) -> str:
    """Serialise strictly: NaN or infinity anywhere raises ValueError."""
    return json.dumps(dataclasses.asdict(result), allow_nan=False)  # type: ignore[call-overload]


MEANS_TABLE = [
    # id, control, treatment, reason, lift_reason, diff, lift
    ("empty_control", EMPTY, SPREAD, Reason.EMPTY, Reason.EMPTY, None, None),
    ("empty_treatment", SPREAD, EMPTY, Reason.EMPTY, Reason.EMPTY, None, None),
    ("both_empty", EMPTY, EMPTY, Reason.EMPTY, Reason.EMPTY, None, None),
    ("single_control", ONE, SPREAD, SINGLE, SINGLE, 1.5, 0.75),
    ("single_both", ONE, ONE, SINGLE, SINGLE, 0.0, 0.0),
    ("zero_var_equal", FLAT2, FLAT2, Reason.ZERO_VARIANCE, Reason.ZERO_VARIANCE, 0.0, 0.0),
    ("zero_var_differ", FLAT2, FLAT3, Reason.ZERO_VARIANCE, Reason.ZERO_VARIANCE, 1.0, 0.5),
    ("all_zero_control", ZEROS, SPREAD, None, Reason.ZERO_CONTROL_MEAN, 3.5, None),
    ("all_zero_both", ZEROS, ZEROS, Reason.ZERO_VARIANCE, Reason.ZERO_CONTROL_MEAN, 0.0, None),
    ("all_zero_treatment", SPREAD, ZEROS, None, Reason.ZERO_VARIANCE, -3.5, -1.0),
    ("zero_mean_control", CENTRED, SPREAD, None, Reason.ZERO_CONTROL_MEAN, 3.5, None),
]


@pytest.mark.parametrize(
    ("control", "treatment", "reason", "lift_reason", "diff", "lift"),
    [case[1:] for case in MEANS_TABLE],
    ids=[case[0] for case in MEANS_TABLE],
)
def test_compare_means_degenerate(control, treatment, reason, lift_reason, diff, lift) -> None:
    r = compare_means(control, treatment)
    json_safe(r)
    assert (r.reason, r.lift_reason) == (reason, lift_reason)
    assert r.diff == pytest.approx(diff) if diff is not None else r.diff is None
    assert r.lift == pytest.approx(lift) if lift is not None else r.lift is None
    if reason is not None:
        assert r.ci is r.p_value is r.p_value_sequential is r.ci_sequential is None
        assert r.significant is False
    else:
        assert r.p_value is not None and r.ci is not None and r.p_value_sequential is not None
    assert (r.lift_ci is None) == (lift_reason is not None)


PROPORTIONS_TABLE = [
    # id, control, treatment, pooled, reason, has_p, has_ci
    ("empty", EMPTY, bern(3, 10), True, Reason.EMPTY, False, False),
    ("all_zero_both", bern(0, 50), bern(0, 60), True, Reason.ZERO_VARIANCE, False, True),
    ("all_one_both", bern(50, 50), bern(60, 60), True, Reason.ZERO_VARIANCE, False, True),
    ("zero_vs_one_pooled", bern(0, 50), bern(60, 60), True, None, True, True),
    ("zero_vs_one_unpooled", bern(0, 50), bern(60, 60), False, Reason.ZERO_VARIANCE, False, True),
    ("single_control", bern(0, 1), bern(3, 10), True, Reason.SINGLE_OBSERVATION, True, True),
    ("single_both_flat", bern(1, 1), bern(1, 1), True, Reason.ZERO_VARIANCE, False, True),
    ("all_zero_control", bern(0, 100), bern(5, 100), True, None, True, True),
]


@pytest.mark.parametrize(
    ("control", "treatment", "pooled", "reason", "has_p", "has_ci"),
    [case[1:] for case in PROPORTIONS_TABLE],
    ids=[case[0] for case in PROPORTIONS_TABLE],
)
def test_compare_proportions_degenerate(control, treatment, pooled, reason, has_p, has_ci) -> None:
    r = compare_proportions(control, treatment, pooled=pooled)
    json_safe(r)
    assert r.reason == reason
    assert (r.p_value is not None) == has_p and (r.ci is not None) == has_ci
    if control.n and control.mean == 0:
        assert r.lift is None and r.lift_reason is Reason.ZERO_CONTROL_MEAN


SUMMARY_TABLE = [
    # id, stats, binary, reason, has_ci
    ("empty", EMPTY, False, Reason.EMPTY, False),
    ("empty_binary", EMPTY, True, Reason.EMPTY, False),
    ("single", ONE, False, Reason.SINGLE_OBSERVATION, False),
    ("single_binary", bern(1, 1), True, Reason.SINGLE_OBSERVATION, True),
    ("zero_variance", FLAT2, False, Reason.ZERO_VARIANCE, False),
    ("all_zero_binary", bern(0, 40), True, Reason.ZERO_VARIANCE, True),
    ("fine", SPREAD, False, None, True),
]


@pytest.mark.parametrize(
    ("stats_", "binary", "reason", "has_ci"),
    [case[1:] for case in SUMMARY_TABLE],
    ids=[case[0] for case in SUMMARY_TABLE],
)
def test_summarize_degenerate(stats_, binary, reason, has_ci) -> None:
    s = summarize(stats_, binary=binary)
    json_safe(s)
    assert s.reason == reason and (s.ci is not None) == has_ci
    assert (s.mean is None) == (stats_.n == 0)


def test_wilson_at_zero_successes_starts_at_zero() -> None:
    ci = summarize(bern(0, 40), binary=True).ci
    assert ci is not None and ci.lower == pytest.approx(0.0, abs=1e-15) and 0 < ci.upper < 0.1


@pytest.mark.parametrize(
    ("control", "treatment", "reason"),
    [
        (EMPTY, SPREAD, Reason.EMPTY),
        (ONE, SPREAD, Reason.SINGLE_OBSERVATION),
        (FLAT2, FLAT3, Reason.ZERO_VARIANCE),
    ],
)
def test_sequential_degenerate(control, treatment, reason) -> None:
    r = sequential_test(control, treatment)
    json_safe(r)
    assert r.reason == reason and r.p_value is None and r.ci is None


def test_sequential_path_skips_degenerate_early_looks() -> None:
    path = sequential_path([EMPTY, ONE, SPREAD], [ONE, SPREAD, SPREAD])
    assert [r.reason for r in path] == [Reason.EMPTY, Reason.SINGLE_OBSERVATION, None]
    assert path[0].p_value is None and path[2].p_value is not None


SRM_TABLE = [
    # id, observed, shares, reason, p_value, mismatch
    ("no_traffic", {}, {"a": 0.5, "b": 0.5}, Reason.EMPTY, None, False),
    ("single_live_arm", {"a": 10}, {"a": 1.0, "b": 0.0}, Reason.SINGLE_ARM, None, False),
    (
        "zero_share_traffic",
        {"a": 10, "b": 3},
        {"a": 1.0, "b": 0.0},
        Reason.TRAFFIC_TO_ZERO_SHARE_ARM,
        0.0,
        True,
    ),
    (
        "unconfigured_arm_traffic",
        {"a": 10, "b": 12, "x": 1},
        {"a": 1, "b": 1},
        Reason.TRAFFIC_TO_ZERO_SHARE_ARM,
        0.0,
        True,
    ),
    ("zero_share_idle", {"a": 50, "b": 50, "c": 0}, {"a": 1, "b": 1, "c": 0}, None, 1.0, False),
]


@pytest.mark.parametrize(
    ("observed", "shares", "reason", "p_value", "mismatch"),
    [case[1:] for case in SRM_TABLE],
    ids=[case[0] for case in SRM_TABLE],
)
def test_srm_degenerate(observed, shares, reason, p_value, mismatch) -> None:
    r = srm_test(observed, shares)
    json_safe(r)
    assert (r.reason, r.mismatch) == (reason, mismatch)
    assert r.p_value == pytest.approx(p_value) if p_value is not None else r.p_value is None
    assert bool(r.warnings) == mismatch


@pytest.mark.parametrize("control", [EMPTY, ONE, FLAT2, ZEROS, CENTRED], ids=repr)
def test_power_degenerate_is_none(control: MeanStats) -> None:
    assert power_at_lift(control, 0.1, 100) is None
    assert minimum_detectable_lift(control, 100) is None
    assert sample_size_per_arm(control, 0.1) is None


def test_holm_passes_none_through() -> None:
    assert holm([None, None]).p_adjusted == (None, None)
    assert holm([]).reject == ()


INVALID = [
    ("negative_n", lambda: MeanStats(-1, 0.0, 0.0)),
    ("fractional_n", lambda: MeanStats(2.5, 1.0, 1.0)),  # type: ignore[arg-type]
    ("nan_total", lambda: MeanStats(3, float("nan"), 1.0)),
    ("negative_sum_sq", lambda: MeanStats(3, 1.0, -1.0)),
    ("sums_without_rows", lambda: MeanStats(0, 1.0, 1.0)),
    ("not_binary", lambda: compare_proportions(SPREAD, bern(1, 4))),
    ("too_many_ones", lambda: summarize(bern(5, 4), binary=True)),
    ("negative_share", lambda: srm_test({"a": 1}, {"a": 1.0, "b": -0.5})),
    ("all_zero_shares", lambda: srm_test({"a": 1}, {"a": 0.0})),
    ("power_below_alpha", lambda: minimum_detectable_lift(SPREAD, 10, power=0.01)),
    ("path_lengths", lambda: sequential_path([SPREAD], [])),
]


@pytest.mark.parametrize("build", [case[1] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_input_raises_value_error(build) -> None:
    with pytest.raises(ValueError):
        build()
