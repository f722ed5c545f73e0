"""The fairness report's statistics against scipy/statsmodels, and on simulated data with
a known truth (returning units whose decisions are not independent)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from bandits.policy import FixedPolicy, UniformPolicy
from experiments.abstats import RatioStats
from experiments.fairness.audit import Sampled, run_audit, swapped
from experiments.fairness.options import parse_options
from experiments.fairness.stats import (
    design_effect,
    exposure_test,
    mean_distance,
    reward_contrasts,
    total_variation,
)


def _counts(table: list[list[int]]) -> dict[tuple[str, str], int]:
    return {(f"v{i}", f"a{j}"): n for i, row in enumerate(table) for j, n in enumerate(row)}


def test_exposure_test_is_scipys_chi_square_and_divides_by_the_design_effect():
    table = [[30, 12, 18], [22, 25, 13], [10, 10, 10]]
    golden = stats.chi2_contingency(np.array(table), correction=False)
    plain = exposure_test(_counts(table), 1.0)
    assert math.isclose(plain.chi2, golden.statistic) and plain.df == golden.dof == 4
    assert math.isclose(plain.p_value, golden.pvalue)
    assert plain.p_value_adjusted == pytest.approx(golden.pvalue) and not plain.sparse
    deff = exposure_test(_counts(table), 2.5)
    assert deff.p_value_adjusted == pytest.approx(stats.chi2.sf(golden.statistic / 2.5, 4))
    assert exposure_test(_counts([[1, 0], [0, 1]]), 1.0).sparse


@pytest.mark.parametrize(("table", "reason"), [
    ([[5, 4]], "single_value"), ([[5], [4]], "single_action"), ([], "single_value"),
    ([[0, 0], [3, 0]], "single_value")])
def test_exposure_test_without_a_table_has_a_reason(table, reason):
    result = exposure_test(_counts(table), 1.0)
    assert result.reason == reason and result.chi2 is None and result.p_value is None


def test_design_effect_is_the_weighted_mean_cluster_size():
    assert design_effect(RatioStats.from_units([1, 1, 1], [0, 0, 0])) == 1.0
    assert design_effect(RatioStats.from_units([2, 4], [0, 0])) == pytest.approx(20 / 6)
    assert design_effect(RatioStats.empty()) is None


def test_reward_contrasts_one_decision_per_unit_are_welch_and_holm():
    rng = np.random.default_rng(1)
    groups = {"a": rng.normal(1.0, 1, 40), "b": rng.normal(1.4, 2, 55),
              "c": rng.normal(1.0, 1, 30)}
    cells = {v: RatioStats.from_units(np.ones(len(y)), y) for v, y in groups.items()}
    found = reward_contrasts(cells, 0.05)
    raw = []
    for c in found:
        rest = np.concatenate([y for v, y in groups.items() if v != c.value])
        cm = CompareMeans(DescrStatsW(groups[c.value]), DescrStatsW(rest))
        _, p, _ = cm.ttest_ind(usevar="unequal")
        low, high = cm.tconfint_diff(alpha=0.05, usevar="unequal")
        assert c.diff == pytest.approx(groups[c.value].mean() - rest.mean())
        assert c.p_value == pytest.approx(p) and c.ci.lower == pytest.approx(low)
        assert c.ci.upper == pytest.approx(high)
        raw.append(p)
    holm = multipletests(raw, method="holm")[1]
    assert [c.p_value_adjusted for c in found] == pytest.approx(list(holm))
    two = reward_contrasts({v: cells[v] for v in "ab"}, 0.05)
    assert two[0].p_value == pytest.approx(two[1].p_value)  # one hypothesis
    assert [c.p_value_adjusted for c in two] == [c.p_value for c in two]


def test_mean_distance_is_the_cluster_robust_mean():
    rng = np.random.default_rng(2)
    units = {f"u{i}": list(rng.uniform(0, 0.4, int(rng.integers(1, 5)))) for i in range(30)}
    values = np.concatenate([units[u] for u in units])
    groups = np.concatenate([[i] * len(units[u]) for i, u in enumerate(units)])
    fit = sm.OLS(values, np.ones(len(values))).fit(cov_type="cluster",
                                                   cov_kwds={"groups": groups})
    found = mean_distance(units, 0.05)
    assert found.contexts == len(values) and found.units == 30
    assert found.mean == pytest.approx(values.mean())
    half = stats.t.isf(0.025, 29) * float(fit.bse[0])
    assert found.ci.lower == pytest.approx(values.mean() - half)
    assert found.ci.upper == pytest.approx(values.mean() + half)
    assert mean_distance({}, 0.05).reason == "empty"
    assert mean_distance({"u": [0.1, 0.2]}, 0.05).reason == "single_observation"


def test_total_variation():
    assert total_variation([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert total_variation([1, 0], [0, 1]) == 1.0
    assert total_variation([0.7, 0.2, 0.1], [0.1, 0.2, 0.7]) == pytest.approx(0.6)
    with pytest.raises(ValueError):
        total_variation([1.0], [0.5, 0.5])


def test_chi_square_with_sticky_units_under_no_disparity():
    """Known truth: action independent of the value, but each unit always gets the same
    action (returning units). Decisions taken as independent reject far too often; divided
    by the design effect the test keeps its level."""
    rng = np.random.default_rng(7)
    raw, corrected, runs = 0, 0, 300
    for _ in range(runs):
        counts: dict[tuple[str, str], int] = {}
        sizes = rng.integers(1, 9, 120)
        for i, size in enumerate(sizes):
            key = ("fm"[i % 2], f"a{rng.integers(0, 3)}")
            counts[key] = counts.get(key, 0) + int(size)
        test = exposure_test(counts, design_effect(RatioStats.from_units(sizes, sizes * 0)))
        raw += test.p_value < 0.05
        corrected += test.p_value_adjusted < 0.05
    assert raw / runs > 0.3
    assert corrected / runs < 0.08


def test_audit_of_policies_that_ignore_or_follow_the_context():
    actions = [("x", {}), ("y", {})]
    samples = [Sampled(f"u{i}", "fm"[i % 2], {"user": {"g": "fm"[i % 2]}}, actions)
               for i in range(10)]
    blind = run_audit(UniformPolicy(), {}, samples, ("user", "g"), ["f", "m"], 0.05)
    assert blind.overall.mean == 0 and blind.overall.contexts == 10 and blind.skipped == 0

    class ByGender:
        def pmf(self, context, actions, types=None, shared=None):
            return [1.0, 0.0] if context["user"]["g"] == "f" else [0.2, 0.8]

    seen = run_audit(ByGender(), {}, samples, ("user", "g"), ["f", "m"], 0.05)
    assert seen.overall.mean == pytest.approx(0.8)
    assert set(seen.pairs) == {("f", "m"), ("m", "f")}
    assert FixedPolicy("x").pmf({}, actions) == [1.0, 0.0]


def test_swapped_keeps_the_original_and_the_type():
    context = {"user": {"g": "f", "age": 3}, "n": 1}
    out = swapped(context, ("n",), 2)
    assert out == {"user": {"g": "f", "age": 3}, "n": 2} and context["n"] == 1
    assert swapped(context, ("user", "g"), True)["user"]["g"] is True


def test_parse_options_defaults():
    o = parse_options({"attribute": "gender"})
    assert (o.path, o.top, o.alpha, o.samples) == (("gender",), 10, None, 200)
