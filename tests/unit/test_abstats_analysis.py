"""Bayesian view, CUPED, guardrails, multiple testing, SRM boundaries and the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.abstats import MeanStats, RatioStats, srm_test
from experiments.abstats.bayes import bayes
from experiments.abstats.cuped import CovariateStats, cuped
from experiments.abstats.guardrail import non_inferiority
from experiments.abstats.multitest import adjust
from experiments.analysis_config import validate_analysis
from experiments.errors import ValidationFailed
from experiments.interval import Interval
from experiments.verdict import Decision, Evidence, decide, decide_arms, reconcile


@pytest.mark.parametrize(("diff", "se"), [(0.02, 0.01), (-0.005, 0.01), (0.0, 0.3),
                                          (0.001, 0.0004)])
def test_chance_to_win_and_expected_loss_match_monte_carlo(diff: float, se: float) -> None:
    draws = np.random.default_rng(3).normal(diff, se, 1_000_000)
    r = bayes(diff, se)
    assert r is not None
    assert abs(r.chance_to_win - np.mean(draws > 0)) < 1e-3
    assert abs(r.expected_loss - np.mean(np.maximum(-draws, 0))) < 1e-3 * max(se, 1e-3)
    assert abs(r.expected_loss_control - np.mean(np.maximum(draws, 0))) < 1e-3 * max(se, 1e-3)
    assert bayes(None, se) is None and bayes(diff, 0.0) is None


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjustments_equal_multipletests(method: str) -> None:
    p = list(np.random.default_rng(1).uniform(0, 0.2, 9))
    expected = multipletests(p, method={"holm": "holm", "bh": "fdr_bh"}[method])[1]
    got = adjust([*p[:4], None, *p[4:]], method)  # type: ignore[arg-type]
    assert got[4] is None
    assert np.allclose([q for q in got if q is not None], expected, rtol=0, atol=1e-15)
    assert adjust([], method) == ()


def _cuped_data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.gamma(2.0, 3.0, n)
    arm = rng.integers(0, 2, n)
    y = 0.3 * z + 0.5 * arm + rng.normal(0, 1.0, n)
    return z, arm, y


def test_cuped_equals_ols_with_the_centred_covariate() -> None:
    z, arm, y = _cuped_data(8, 2000)
    stats_ = {a: CovariateStats(RatioStats.from_units(np.ones((arm == a).sum()), y[arm == a]),
                                z[arm == a].sum(), (z[arm == a] ** 2).sum(), z[arm == a].sum(),
                                (z[arm == a] * y[arm == a]).sum()) for a in (0, 1)}
    result = cuped({"c": stats_[0], "t": stats_[1]})
    assert result is not None
    x = np.column_stack([np.ones(y.size), arm, z - z.mean()])
    fit = sm.OLS(y, x).fit()
    diff = result.arms["t"].mean - result.arms["c"].mean
    assert math.isclose(diff, fit.params[1], rel_tol=1e-9)
    assert math.isclose(result.theta, fit.params[2], rel_tol=1e-9)
    se = math.sqrt(result.arms["t"].mean_variance + result.arms["c"].mean_variance)
    hc = sm.OLS(y, x).fit(cov_type="HC1").bse[1]
    assert abs(se / hc - 1) < 0.01  # the arms' residual variances, not the homoscedastic se
    assert result.variance_reduction["t"] > 0.5  # z explains most of the variance


def test_cuped_on_returning_units_reduces_variance_and_keeps_the_ratio_centre() -> None:
    rng = np.random.default_rng(4)
    x = rng.geometric(1 / 8, 3000).astype(float)
    z = rng.gamma(2.0, 1.0, 3000)
    arm = rng.integers(0, 2, 3000)
    y = rng.poisson(x * (0.05 + 0.04 * z)).astype(float)
    arms = {a: CovariateStats(RatioStats.from_units(x[arm == a], y[arm == a]),
                              z[arm == a].sum(), (z[arm == a] ** 2).sum(),
                              (z[arm == a] * x[arm == a]).sum(), (z[arm == a] * y[arm == a]).sum())
            for a in (0, 1)}
    result = cuped({"c": arms[0], "t": arms[1]})
    assert result is not None and result.theta > 0
    assert all(0.05 < r < 1 for r in result.variance_reduction.values())
    raw = arms[1].ratio.mean - arms[0].ratio.mean
    adjusted = result.arms["t"].mean - result.arms["c"].mean
    assert abs(adjusted - raw) < 3 * math.sqrt(arms[0].ratio.mean_variance
                                                + arms[1].ratio.mean_variance)
    flat = {k: CovariateStats(v.ratio, 2.0 * v.ratio.n, 4.0 * v.ratio.n, 2 * v.ratio.sum_x,
                              2 * v.ratio.sum_y) for k, v in {"c": arms[0], "t": arms[1]}.items()}
    assert cuped(flat) is None  # a constant covariate has nothing to say


@pytest.mark.parametrize("nudge", [-1e-6, 1e-6])
def test_guardrail_holds_exactly_when_the_upper_bound_is_below_the_margin(nudge: float) -> None:
    c, t = MeanStats(2000, 100.0, 100.0), MeanStats(2000, 110.0, 110.0)
    probe = non_inferiority(c, t, 1.0, higher_is_better=False)
    assert probe.harm_upper is not None
    margin = probe.harm_upper + nudge  # just below / just above the one-sided bound
    r = non_inferiority(c, t, margin, higher_is_better=False)
    assert r.holds is (nudge > 0)
    assert r.p_value is not None and (r.p_value < 0.05) is (nudge > 0)
    # One-sided Welch: equals statsmodels' ttest_ind with value=margin, alternative=smaller.
    from statsmodels.stats.weightstats import ttest_ind
    t_vals = np.r_[np.ones(110), np.zeros(1890)]
    c_vals = np.r_[np.ones(100), np.zeros(1900)]
    _, p, _ = ttest_ind(t_vals, c_vals, alternative="smaller", usevar="unequal", value=margin)
    assert math.isclose(r.p_value, p, rel_tol=1e-9)


def test_guardrail_direction_and_harm() -> None:
    c, t = MeanStats(5000, 500.0, 500.0), MeanStats(5000, 800.0, 800.0)
    assert non_inferiority(c, t, 0.01, higher_is_better=False).harmful  # +6 pts of refunds
    assert non_inferiority(c, t, 0.01, higher_is_better=True).holds  # +6 pts of clicks
    assert not non_inferiority(MeanStats.empty(), t, 0.01, higher_is_better=True).holds


@pytest.mark.parametrize(("counts", "mismatch"), [((5160, 4840), False), ((5170, 4830), True)])
def test_srm_threshold_is_one_in_a_thousand(counts: tuple[int, int], mismatch: bool) -> None:
    r = srm_test({"champion": counts[0], "bandit": counts[1]}, {"champion": 1, "bandit": 1})
    expected = stats.chisquare(counts).pvalue
    assert math.isclose(r.p_value, expected, rel_tol=1e-12)
    assert 0.0005 < r.p_value < 0.002 and r.mismatch is mismatch


WIN = Interval(0.05, 0.30)


@pytest.mark.parametrize(("evidence", "verdict"), [
    (Evidence("ab", "b", invalid="units do not match the shares", diff=0.1, significant=True),
     "invalid"),
    (Evidence("ab", "b"), "keep_running"),
    (Evidence("ab", "b", diff=0.02, lift=0.2, interval=WIN, significant=True), "ship"),
    (Evidence("ab", "b", diff=0.02, lift=0.2, interval=WIN, significant=True,
              guardrails_breached=("event:refund",)), "keep_running"),
    (Evidence("ab", "b", diff=0.02, lift=0.2, interval=WIN, significant=True,
              guardrails_breached=("event:refund",), guardrails_harmful=("event:refund",)),
     "stop_harm"),
    (Evidence("ab", "b", diff=-0.02, lift=-0.2, interval=Interval(-0.3, -0.05),
              significant=True), "stop_harm"),
    (Evidence("ab", "b", diff=0.001, lift=0.01, interval=Interval(-0.02, 0.03),
              equivalent=True), "no_difference"),
    (Evidence("ab", "b", diff=0.001, lift=0.01, interval=Interval(-0.2, 0.3),
              planned_reached=True), "no_difference"),
    (Evidence("ab", "b", diff=0.001, lift=0.01, interval=Interval(-0.2, 0.3),
              units_needed=1200), "keep_running"),
])
def test_verdict_transitions(evidence: Evidence, verdict: str) -> None:
    d = decide(evidence)
    assert d.verdict == verdict and "`" not in d.reason
    if verdict == "keep_running" and evidence.units_needed:
        assert d.units_needed == 1200 and "1,200 more units" in d.reason


def test_verdict_over_arms_and_reconciliation() -> None:
    ship = Evidence("ab", "b", diff=0.02, lift=0.2, interval=WIN, significant=True)
    best = Evidence("ab", "c", diff=0.03, lift=0.3, interval=WIN, significant=True)
    harm = Evidence("ab", "d", diff=-0.02, lift=-0.2, interval=WIN, significant=True)
    assert decide_arms([ship, harm, best]).arm == "c"
    assert decide_arms([harm, Evidence("ab", "e")]).verdict == "stop_harm"
    assert decide_arms([]).verdict == "keep_running"
    ab = Decision("keep_running", "bandit", "", source="ab")
    assert reconcile([ab, Decision("keep_running", "m", "", source="ope")]) is None
    note = reconcile([Decision("ship", "m", "", source="progressive"), ab])
    assert note is not None and note.startswith("Trust the randomized A/B test")


REWARD = {"events": {"click": 1.0, "refund": "value"}}


@pytest.mark.parametrize(("value", "path"), [
    ([], "analysis"),
    ({"multiple_test": "bh"}, "analysis.multiple_test"),
    ({"multiple_testing": "bonferroni"}, "analysis.multiple_testing"),
    ({"cuped_covariate": "a.b.c"}, "analysis.cuped_covariate"),
    ({"per_unit_means": "yes"}, "analysis.per_unit_means"),
    ({"guardrails": {}}, "analysis.guardrails"),
    ({"guardrails": [{"metric": "event:refunds", "margin": 0.1}]}, "analysis.guardrails[0].metric"),
    ({"guardrails": [{"metric": "event:refund", "margin": -0.1}]}, "analysis.guardrails[0].margin"),
    ({"guardrails": [{"metric": "event:refund", "margin": True}]}, "analysis.guardrails[0].margin"),
    ({"guardrails": [{"metric": "event:refund", "margn": 0.1}]}, "analysis.guardrails[0].margn"),
    ({"guardrails": [{"metric": "reward", "margin": 0.1}, {"metric": "reward", "margin": 0.2}]},
     "analysis.guardrails[1].metric"),
])
def test_bad_analysis_settings_name_their_path(value: object, path: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_analysis(value, REWARD)
    assert err.value.details[0]["field"] == path


def test_unknown_analysis_key_suggests_the_nearest() -> None:
    with pytest.raises(ValidationFailed) as err:
        validate_analysis({"guardrail": []}, REWARD)
    assert "did you mean 'guardrails'" in err.value.details[0]["message"]


@pytest.mark.parametrize(("low", "high", "word", "decision"), [
    (0.01, 0.03, "better", "ship"), (-0.03, -0.01, "worse", "stop_harm"),
    (-0.01, 0.02, "inconclusive", "keep_running"),
    (math.nan, math.nan, "inconclusive", "keep_running"),
])
def test_ope_and_learning_verdicts_come_from_the_one_function(low: float, high: float,
                                                               word: str, decision: str) -> None:
    from experiments.learning.progress import Bucket, compare
    from experiments.ope.results import Estimate, difference_to_dict, verdict
    assert verdict(Interval(low, high)) == word
    shape = difference_to_dict(Estimate((low + high) / 2, Interval(low, high), "dr", 100, 0.01))
    assert shape["verdict"] == word and shape["decision"] == decision
    assert compare(Bucket(), 0.05).verdict == "insufficient_data"
