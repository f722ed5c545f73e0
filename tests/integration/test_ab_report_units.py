"""The A/B report with returning units: every figure at the unit level, checked against
statsmodels' cluster-robust OLS on the decision-level data (clustered by unit)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats import multitest

from tests.integration.helpers import register
from tests.integration.test_ab_report import ARMS, REWARD, SIZES, Truth, close, report, seed


@pytest.fixture
def returning(app, client, team) -> Truth:
    register(client, team, arms=ARMS, reward=REWARD, champion={"type": "uniform"})
    return seed(app, "homepage-hero", SIZES, seed_=5, returning=True)


def _cluster(truth: Truth, name: str, arm: str) -> tuple[float, float, float, float, int]:
    """Mean, cluster-robust se and t interval of a metric in an arm, and its units."""
    keep = [i for i, a in enumerate(truth.arm) if a == arm]
    y = np.array([getattr(truth, name)[i] for i in keep], dtype=float)
    groups = np.unique([truth.unit[i] for i in keep], return_inverse=True)[1]
    fit = sm.OLS(y, np.ones((y.size, 1))).fit(cov_type="cluster", cov_kwds={"groups": groups},
                                              use_t=True)
    (low, high), = fit.conf_int(0.05)
    return float(fit.params[0]), float(fit.bse[0]), float(low), float(high), int(groups.max()) + 1


def test_arms_are_ratios_with_cluster_robust_intervals(client, team, returning):
    body = report(client, team)
    assert body["analysis_unit"] == "unit"
    for arm in ARMS:
        row = body["arms"][arm]
        mean, _, low, high, units = _cluster(returning, "reward", arm)
        assert row["units"] == units < row["n"] and row["method"] == "t_delta"
        assert close(row["mean"], mean)
        assert close(row["ci_low"], low) and close(row["ci_high"], high)
        nounit = sum(1 for u, a in zip(returning.unit, returning.arm, strict=True)
                     if a == arm and u.startswith("event:"))
        assert row["decisions_without_unit"] == nounit
        click = row["metrics"]["event:click"]
        c_mean, _, c_low, c_high, _ = _cluster(returning, "click", arm)
        assert close(click["mean"], c_mean) and close(click["ci_low"], c_low)
        assert close(click["ci_high"], c_high)


def test_comparisons_are_welch_on_cluster_robust_variances(client, team, returning):
    body = report(client, team)
    rows = body["comparisons"]
    names = {"reward": "reward", "event:click": "click", "event:purchase": "purchase"}
    raw = []
    for row in rows:
        mc, sc, _, _, gc = _cluster(returning, names[row["metric"]], "champion")
        mt, st, _, _, gt = _cluster(returning, names[row["metric"]], row["arm"])
        se = np.hypot(sc, st)
        df = se**4 / (sc**4 / (gc - 1) + st**4 / (gt - 1))
        p = 2 * stats.t.sf(abs(mt - mc) / se, df)
        half = stats.t.isf(0.025, df) * se
        assert row["method"] == "welch_delta" and close(row["se"], se)
        assert close(row["diff"], mt - mc) and close(row["p_value"], p)
        assert close(row["ci_low"], mt - mc - half) and close(row["ci_high"], mt - mc + half)
        raw.append(p)
    _, holm, _, _ = multitest.multipletests(raw, method="holm")
    for row, h in zip(rows, holm, strict=True):
        assert close(row["p_value_adjusted"], h) and row["adjustment"] == "holm"
    _, bh, _, _ = multitest.multipletests(raw, method="fdr_bh")
    again = report(client, team, multiple_testing="bh")["comparisons"]
    assert all(close(r["p_value_adjusted"], q) for r, q in zip(again, bh, strict=True))
    assert all(r["adjustment"] == "bh" for r in again)


def test_srm_counts_units_and_segments_take_the_first_decision(client, team, returning):
    body = report(client, team, segment="user.country", top="2")
    units = {a: len({u for u, b in zip(returning.unit, returning.arm, strict=True) if b == a})
             for a in ARMS}
    assert body["srm"]["observed"] == units and body["srm"]["unit"] == "units"
    expected = stats.chisquare(list(units.values()),
                               np.array(list(ARMS.values())) * sum(units.values())).pvalue
    assert close(body["srm"]["p_value"], expected)
    first: dict[str, tuple[float, str | None]] = {}
    for u, t, c in zip(returning.unit, returning.created, returning.country, strict=True):
        if u not in first or t < first[u][0]:
            first[u] = (t, c)
    label = {"DE": "DE", "FR": "FR", "US": "(other)", "IT": "(other)", None: "(missing)"}
    for entry in body["segments"]["values"]:
        for arm, row in entry["arms"].items():
            mine = {u for u, a in zip(returning.unit, returning.arm, strict=True)
                    if a == arm and label[first[u][1]] == entry["value"]}
            n = sum(1 for u in returning.unit if u in mine)
            assert row["units"] == len(mine) and row["n"] == n
    raw = [c["p_value"] for v in body["segments"]["values"] for c in v["comparisons"]]
    adjusted = [c["p_value_adjusted"] for v in body["segments"]["values"]
                for c in v["comparisons"]]
    assert np.allclose(adjusted, multitest.multipletests(raw, method="holm")[1], atol=1e-12)


def test_decision_and_plain_notes(client, team, returning):
    body = report(client, team)
    decision = body["decision"]
    assert decision["verdict"] in ("ship", "keep_running", "no_difference", "stop_harm",
                                   "invalid")
    assert decision["reason"] and "`" not in decision["reason"]
    assert all("`" not in note and "include_open" not in note for note in body["notes"])
    row = body["comparisons"][0]
    assert 0 <= row["bayes"]["chance_to_win"] <= 1
    assert body["timeline"]["series"]["bandit"][-1]["units"] == body["arms"]["bandit"]["units"]


def test_decisions_without_a_unit_are_counted_and_warned_about(app, client, team):
    from tests.integration.test_ab_report import _decision, _write, experiment_id

    register(client, team, key="nounit", unit_field="user_id")
    exp_id = experiment_id(app, "nounit")
    rows = [_decision(exp_id, i, ("champion", "bandit")[i % 2], 1.7e9 + i,
                      unit_id=None if i % 5 else f"u{i % 7}", reward=float(i % 3 == 0))
            for i in range(200)]
    _write(app, rows, [])
    body = report(client, team, "nounit")
    without = {a: row["decisions_without_unit"] for a, row in body["arms"].items()}
    assert without == {"champion": 80, "bandit": 80}
    # Units u0..u6 appear in both arms; each belongs to the arm of its first decision.
    first: dict[str, int] = {}
    for i in range(0, 200, 5):
        first.setdefault(f"u{i % 7}", i)
    arm_of = {u: ("champion", "bandit")[i % 2] for u, i in first.items()}
    for arm in ("champion", "bandit"):
        mine = {u for u, a in arm_of.items() if a == arm}
        n = sum(1 for i in range(0, 200, 5) if f"u{i % 7}" in mine)
        assert body["arms"][arm]["units"] == 80 + len(mine)
        assert body["arms"][arm]["n"] == 80 + n
    warning = [w for w in body["warnings"] if w["code"] == "unit_field_missing"]
    assert len(warning) == 1 and "'user_id'" in warning[0]["message"]
