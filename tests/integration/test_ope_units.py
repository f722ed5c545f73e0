"""The OPE report on returning units (both databases): its intervals are cluster-robust by
unit, equal to statsmodels' cluster-robust SE of the per-decision IPS terms recomputed from
the seeded rows; decisions without a unit are units of their own."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
import statsmodels.api as sm
from scipy import stats
from scipy.special import ndtri

from experiments import clock
from experiments.models import Decision, Experiment
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, register
from tests.integration.test_ope_report import URL, _row

N_UNITS, N = 120, 1200


def seed_units(app) -> dict[str, np.ndarray]:
    """Units with their own click rate (Beta(0.5, 4.5) x action multiplier) and ~10 visits;
    a third of the units' arms is the champion (fixed hero-1), the rest log uniformly.
    Every 10th decision has no unit."""
    rng = np.random.default_rng(21)
    rate = rng.beta(0.5, 4.5, size=N_UNITS)
    unit = rng.integers(0, N_UNITS, size=N)
    chosen, reward, names = [], [], []
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        start, rows = clock.now() - 86400, []
        for i in range(N):
            u = int(unit[i])
            arm = "champion" if u % 3 == 0 else "bandit"
            pmf = [1.0, 0.0, 0.0] if arm == "champion" else [1 / 3] * 3
            a = 0 if arm == "champion" else int(rng.integers(0, 3))
            click = rng.random() < min(1.0, rate[u] * (1.0, 2.0, 0.5)[a])
            row = _row(exp, i, arm, pmf, a, 1.0 if click else None, start + i)
            row["unit_id"] = None if i % 10 == 0 else f"user-{u}"
            rows.append(row)
            chosen.append(a)
            reward.append(float(click))
            names.append(f"row-{i}" if i % 10 == 0 else f"user-{u}")
        session.execute(sa.insert(Decision), rows)
        session.commit()
    return {"chosen": np.array(chosen), "reward": np.array(reward),
            "unit": np.array(names), "propensity": np.array(
                [1.0 if n_arm == 0 else 1 / 3 for n_arm in (unit % 3)])}


def test_report_intervals_are_cluster_robust_by_unit(client, team, app) -> None:
    register(client, team)
    truth = seed_units(app)
    answer = client.get(URL, query_string={"candidates": "fixed:hero-2"},
                        headers=team.auth("analyst"))
    assert answer.status_code == 200, answer.json
    report = answer.json
    assert report["n_decisions"] == N
    assert report["n_units"] == np.unique(truth["unit"]).size
    ips = report["candidates"]["fixed:hero-2"]["estimators"]["ips"]
    terms = (truth["chosen"] == 1) / truth["propensity"] * truth["reward"]
    fit = sm.OLS(terms, np.ones((N, 1))).fit(cov_type="cluster",
                                             cov_kwds={"groups": truth["unit"]})
    z = float(ndtri(0.975))
    assert ips["value"] == pytest.approx(terms.mean(), rel=1e-9)
    assert (ips["ci_high"] - ips["ci_low"]) / (2 * z) == pytest.approx(fit.bse[0], rel=1e-9)
    naive = terms.std(ddof=1) / np.sqrt(N)
    assert fit.bse[0] > 1.3 * naive  # the units matter on this log

    # the champion arm's own value: ratio of per-unit sums, cluster-robust t interval
    on = report["champion"]["on_policy"]
    mine = truth["propensity"] == 1.0
    own = sm.OLS(truth["reward"][mine], np.ones((mine.sum(), 1))).fit(
        cov_type="cluster", cov_kwds={"groups": truth["unit"][mine]})
    groups = np.unique(truth["unit"][mine]).size
    t = stats.t.isf(0.025, groups - 1)
    assert on["method"] == "ratio" and on["n_units"] == groups and on["n"] == mine.sum()
    assert on["value"] == pytest.approx(truth["reward"][mine].mean(), rel=1e-9)
    assert (on["ci_high"] - on["ci_low"]) / (2 * t) == pytest.approx(own.bse[0], rel=1e-9)

    boot = client.get(URL, query_string={"candidates": "fixed:hero-2", "intervals": "bootstrap",
                                         "bootstrap_samples": 400, "seed": 2},
                      headers=team.auth("analyst")).json
    got = boot["candidates"]["fixed:hero-2"]["estimators"]["ips"]
    assert got["value"] == pytest.approx(ips["value"], rel=1e-12)
    assert got["ci_high"] - got["ci_low"] > 0.75 * (ips["ci_high"] - ips["ci_low"])
    assert ACTIONS[1]["id"] == "hero-2"
