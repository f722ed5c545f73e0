"""OPE on returning units: cluster-robust variances checked against statsmodels, unchanged
numbers with one decision per unit, unit-resampling bootstrap, and interval coverage on a
short version of bench/ope_units.py."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from bench import ope_units
from experiments.abstats.ratio import RatioStats
from experiments.ope import (
    DM,
    DR,
    IPS,
    SNIPS,
    LoggedBatch,
    PairedDifference,
    RatioEstimator,
    UnitCodes,
    UnitSums,
    unit_sums,
)
from experiments.ope.agreement import compare


def _log(seed: int = 3, n_units: int = 60) -> ope_units.Log:
    return ope_units.draw(ope_units.make_world(), np.random.default_rng(seed), n_units)


def _cluster_se(terms: np.ndarray, units: np.ndarray) -> float:
    """statsmodels: OLS of the per-decision terms on a constant, cluster-robust by unit
    (its default small-sample correction G/(G-1) * (n-1)/(n-k), k = 1)."""
    fit = sm.OLS(terms, np.ones((terms.size, 1))).fit(
        cov_type="cluster", cov_kwds={"groups": units})
    return float(fit.bse[0])


@pytest.mark.parametrize("template", [IPS(), IPS(clip=5.0), DM(), DR()])
def test_mean_estimators_se_is_statsmodels_cluster_robust_se(template: RatioEstimator) -> None:
    log = _log()
    est = template.add(log.batch, units=log.units).get()
    x = template.terms(log.batch)[:, 0]
    assert est.value == pytest.approx(x.mean(), rel=1e-12)
    assert est.std_error == pytest.approx(_cluster_se(x, log.units), rel=1e-9)
    assert est.n == log.batch.n and est.n_units == np.unique(log.units).size
    # and it differs from the per-decision SE here (units with ~8 correlated visits)
    assert est.std_error > 1.2 * template.add(log.batch).get().std_error


def test_snips_and_paired_difference_se_are_cluster_robust_se_of_influence_terms() -> None:
    log = _log(seed=5)
    batch = log.batch
    snips = SNIPS().add(batch, units=log.units).get()
    w, r = batch.weights, batch.rewards
    influence = (w * r - snips.value * w) / w.mean()
    assert snips.std_error == pytest.approx(_cluster_se(influence, log.units), rel=1e-9)

    champion = batch.with_target(np.full(batch.target_pmf.shape, 1 / ope_units.K))
    diff = PairedDifference(SNIPS()).add(batch, champion, units=log.units).get()
    w0 = champion.weights
    theta_c, theta_0 = (w * r).sum() / w.sum(), (w0 * r).sum() / w0.sum()
    paired = (w * r - theta_c * w) / w.mean() - (w0 * r - theta_0 * w0) / w0.mean()
    assert diff.value == pytest.approx(theta_c - theta_0, rel=1e-12)
    assert diff.std_error == pytest.approx(_cluster_se(paired, log.units), rel=1e-9)


@pytest.mark.parametrize("template", [IPS(), SNIPS(), DR()])
def test_one_decision_per_unit_changes_nothing(template: RatioEstimator) -> None:
    batch = _log().batch
    plain = template.add(batch).get()
    own = template.add(batch, units=np.arange(batch.n)[::-1]).get()
    assert own.value == plain.value
    assert own.std_error == pytest.approx(plain.std_error, rel=1e-12)
    assert own.interval.lower == pytest.approx(plain.interval.lower, rel=1e-12)
    assert own.n == own.n_units == plain.n_units == batch.n


def test_unit_sums_across_chunks_equal_one_shot() -> None:
    log = _log(seed=11)
    batch, names = log.batch, np.array([f"u{u}" for u in log.units], dtype=object)
    names[::7] = None  # a decision without a unit is a unit of its own
    codes, sums = UnitCodes(), UnitSums(2)
    for start in range(0, batch.n, 97):
        part = batch.rows(slice(start, start + 97))
        sums.add(codes.codes(names[start:start + 97]), DR().terms(part))
    streamed = DR().add_units(sums.sums, decisions=batch.n).get()
    keys = np.where(names == None, [f"row{i}" for i in range(batch.n)], names)  # noqa: E711
    one_shot = DR().add(batch, units=keys.astype(str)).get()
    assert streamed.n_units == one_shot.n_units == codes.count
    assert streamed.value == pytest.approx(one_shot.value, rel=1e-12)
    assert streamed.std_error == pytest.approx(one_shot.std_error, rel=1e-12)


def test_unit_sums_keep_first_appearance_order_and_check_shapes() -> None:
    got = unit_sums(np.array([5, 2, 5, 9]), np.arange(8.0).reshape(4, 2))
    assert got.tolist() == [[4.0, 6.0], [2.0, 3.0], [6.0, 7.0]]
    with pytest.raises(ValueError, match="units must have shape"):
        unit_sums(np.array([1, 2]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="columns must have shape"):
        UnitSums(2).add(np.array([0, 1]), np.zeros((2, 3)))


def test_bootstrap_resamples_units() -> None:
    """With whole units resampled the percentile interval is as wide as the clustered
    analytic one; resampling decisions gives the (too narrow) per-decision width."""
    log = _log(seed=8, n_units=150)
    rng = np.random.default_rng(1)
    by_unit = IPS(n_bootstrap=2000).add(log.batch, rng, units=log.units).get()
    by_row = IPS(n_bootstrap=2000).add(log.batch, np.random.default_rng(1)).get()
    width = by_unit.bootstrap_interval.upper - by_unit.bootstrap_interval.lower
    analytic = by_unit.interval.upper - by_unit.interval.lower
    assert width == pytest.approx(analytic, rel=0.12)
    row_width = by_row.bootstrap_interval.upper - by_row.bootstrap_interval.lower
    assert row_width < 0.8 * width


def test_clustered_intervals_cover_the_value_on_new_units() -> None:
    """Short version of bench/ope_units.py (2,000 replications there): 300 replications of
    300 returning units. Per-decision intervals under-cover; clustered ones do not."""
    result = ope_units.coverage(reps=300, n_units=300, seed=1)
    for name in ("ips", "snips", "dr"):
        before, after = result[name]
        assert 0.92 <= after <= 0.98, (name, after)
        assert before < 0.88, (name, before)


def test_a_batch_without_units_is_unchanged_by_the_units_module() -> None:
    batch = LoggedBatch(rewards=[1.0, 0.0, 1.0], logged_propensity=[0.5] * 3,
                        chosen=[0, 1, 0], target_pmf=[[1.0, 0.0]] * 3)
    est = IPS().add(batch).get()
    assert (est.value, est.n, est.n_units) == (pytest.approx(4 / 3), 3, 3)


def test_ab_and_ope_disagree_at_the_nominal_rate_unless_the_propensities_are_wrong() -> None:
    """Short version of bench/ope_units.py's second table: the A/B-vs-OPE flag fires at
    about 5% when OPE is right, and most of the time when the logged propensities of the
    action the target favours are halved (IPS then overstates the policy)."""
    right = ope_units.disagreement(reps=200, n_units=300, seed=2)
    assert all(0.01 <= rate <= 0.11 for rate in right.values()), right
    wrong = ope_units.disagreement(reps=100, n_units=300, propensity_error=0.5, seed=2)
    assert wrong["ips"] >= 0.6, wrong


def test_the_comparison_of_a_b_and_ope() -> None:
    ab = RatioStats.from_units([2, 3, 1, 4], [1.0, 0.0, 1.0, 2.0])
    log = _log(seed=4)
    ope = IPS().add(log.batch, units=log.units).get()
    got = compare(ab, ope)
    se = np.sqrt(ab.mean_variance + ope.std_error**2)
    assert got.difference == pytest.approx(ab.mean - ope.value)
    assert got.difference_interval.upper - got.difference == pytest.approx(1.959964 * se,
                                                                            rel=1e-6)
    assert got.disagree == (not got.difference_interval.lower <= 0 <= got.difference_interval.upper)
    assert compare(ab, ope, supported=False).status == "unsupported"
    assert not compare(ab, ope, supported=False).disagree
    lonely = compare(RatioStats.from_units([3], [1.0]), ope)
    assert lonely.status == "insufficient_data" and not lonely.disagree
    assert lonely.to_dict()["difference"]["ci_low"] is None
