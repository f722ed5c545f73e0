"""The drift report through the API on both databases: PSI, reward and model-quality
drift against independent computations (numpy, statsmodels, scipy), windows, `/metrics`,
and a 400 naming each bad parameter."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import sqlalchemy as sa
import statsmodels.api as sm
from scipy import stats

from experiments import clock
from experiments.models import Decision
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, register
from tests.integration.test_ab_report import experiment_id

DAY = 86400.0
COUNTRIES = ["DE", "FR", "US", "IT"]


def _row(exp_id: int, i: int, created: float, context: dict, **over) -> dict:
    row = dict(experiment_id=exp_id, event_id=f"d{exp_id}-{i}", request_hash="h",
               arm="bandit", policy="bandit", model_version=None, experiment_version=1,
               phase="online", unit_id=None, context=context, actions=ACTIONS,
               pmf=[1 / 3] * 3, chosen_index=0, action_id="hero-1", propensity=1 / 3,
               deferred=False, activated_at=created, closes_at=created + 600, reward=None,
               reward_count=0, learned_version=None, created_at=created)
    row.update(over)
    return row


def _write(app, rows: list[dict]) -> None:
    with session_of(app) as session:
        session.execute(sa.insert(Decision), rows)
        session.commit()


def _get(client, team, key: str = "homepage-hero", status: int = 200, **params):
    response = client.get(f"/v1/experiments/{key}/reports/drift", query_string=params,
                          headers=team.auth("analyst"))
    assert response.status_code == status, response.json
    return response.json


def _contexts(rng: np.random.Generator, n: int, shift: bool) -> list[dict]:
    """Country (categorical), hour (numeric), user.mobile (boolean), user.age (numeric,
    never shifted)."""
    p = [0.1, 0.2, 0.3, 0.4] if shift else [0.4, 0.3, 0.2, 0.1]
    countries = rng.choice(COUNTRIES, size=n, p=p)
    hours = rng.normal(14 + (4 if shift else 0), 3, size=n)
    mobile = rng.random(n) < 0.5
    ages = rng.normal(40, 10, size=n)
    return [{"country": str(c), "hour": float(h), "user_id": f"u{rng.integers(10**9)}",
             "user": {"mobile": bool(m), "age": float(a)}}
            for c, h, m, a in zip(countries, hours, mobile, ages, strict=True)]


def _seed_windows(app, key: str, shift: bool, n: int = 1500, seed: int = 3) -> float:
    """Decisions in the 24 h before the last 24 h (reference) and in the last 24 h minus
    an hour (recent, closed); returns the clock used."""
    rng = np.random.default_rng(seed)
    exp_id, now = experiment_id(app, key), clock.now()
    rows = []
    for start, moved in ((now - 2 * DAY, False), (now - DAY, shift)):
        for j, ctx in enumerate(_contexts(rng, n, moved)):
            rows.append(_row(exp_id, len(rows), start + 60 + j * (DAY - 7200) / n, ctx))
    _write(app, rows)
    return now


def test_no_shift_no_alert_and_shift_alerts(app, client, team):
    register(client, team)
    register(client, team, key="shifted")
    _seed_windows(app, "homepage-hero", shift=False)
    _seed_windows(app, "shifted", shift=True, seed=4)
    calm = _get(client, team)
    moved = _get(client, team, "shifted")
    calm_psi = {f["feature"]: f for f in calm["features"]}
    moved_psi = {f["feature"]: f for f in moved["features"]}
    # user_id, the experiment's unit_field, is an identifier, not a feature to compare.
    assert sorted(calm_psi) == ["country", "hour", "user.age", "user.mobile"]
    assert calm["reference"]["decisions"] == calm["recent"]["decisions"] == 1500
    assert all(f["psi"] < 0.05 and not f["alert"] for f in calm["features"])
    assert calm_psi["hour"]["kind"] == "numeric" and calm_psi["country"]["kind"] == "categorical"
    assert calm_psi["user.mobile"]["kind"] == "categorical"
    assert len(calm_psi["hour"]["bins"]) == 10  # deciles, no missing bin
    assert moved_psi["country"]["alert"] and moved_psi["country"]["psi"] > 0.25
    assert moved_psi["hour"]["alert"] and moved_psi["hour"]["psi"] > 0.25
    assert not moved_psi["user.age"]["alert"] and not moved_psi["user.mobile"]["alert"]
    assert moved["alert"] is True


def test_psi_equals_a_hand_computation(app, client, team):
    """Reference: 3 DE, 1 FR; recent: 1 DE, 1 FR, 2 without the field."""
    register(client, team)
    exp_id, now = experiment_id(app, "homepage-hero"), clock.now()
    ref = [{"country": "DE"}] * 3 + [{"country": "FR"}]
    rec = [{"country": "DE"}, {"country": "FR"}, {}, {"other": 1}]
    _write(app, [_row(exp_id, i, now - 1.5 * DAY + i, c) for i, c in enumerate(ref)]
           + [_row(exp_id, 10 + i, now - 0.5 * DAY + i, c) for i, c in enumerate(rec)])
    body = _get(client, team, threshold="0.5")
    row = next(f for f in body["features"] if f["feature"] == "country")
    e, a = [0.75, 0.25, 1e-4], [0.25, 0.25, 0.5]  # DE, FR, (missing); floor 1e-4
    expected = sum((x - y) * math.log(x / y) for y, x in zip(e, a, strict=True))
    assert row["psi"] == pytest.approx(expected, abs=1e-6)
    assert [b["bin"] for b in row["bins"]] == ["DE", "FR", "(missing)"]
    assert row["alert"] is (expected > 0.5)
    assert body["method"]["psi_threshold"] == 0.5


def _cluster_se(y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean per decision and its cluster-robust (CR1) standard error, by statsmodels."""
    fit = sm.OLS(y, np.ones_like(y)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    return float(fit.params[0]), float(fit.bse[0])


def test_reward_drift_equals_statsmodels_cluster_robust_welch(app, client, team):
    """Returning units with skewed rates; recent rewards higher. Golden: statsmodels'
    cluster-robust mean and SE per window, Welch-Satterthwaite df in units, scipy's t."""
    register(client, team)
    rng = np.random.default_rng(8)
    exp_id, now = experiment_id(app, "homepage-hero"), clock.now()
    rows, truth = [], {0: ([], []), 1: ([], [])}
    for w, start in enumerate((now - 2 * DAY, now - DAY)):
        for u in range(120):
            rate = rng.beta(1, 6) * (1.5 if w else 1.0)
            for _ in range(int(rng.integers(1, 6))):
                r = float(rng.random() < rate)
                unit = f"u{w}-{u}"
                rows.append(_row(exp_id, len(rows), start + 60 + len(rows), {"k": 1},
                                 unit_id=unit, reward=r))
                truth[w][0].append(r)
                truth[w][1].append(unit)
    # Not counted: still open, paused, not activated.
    rows.append(_row(exp_id, len(rows), now - 60, {}, reward=1.0))
    rows.append(_row(exp_id, len(rows), now - 7200, {}, reward=1.0, phase="paused"))
    rows.append(_row(exp_id, len(rows), now - 7200, {}, reward=1.0, activated_at=None))
    _write(app, rows)
    body = _get(client, team, alpha="0.1")
    (m0, s0), (m1, s1) = (_cluster_se(np.array(truth[w][0]), np.array(truth[w][1]))
                          for w in (0, 1))
    g0, g1 = (len(set(truth[w][1])) for w in (0, 1))
    se = math.hypot(s0, s1)
    df = se**4 / (s0**4 / (g0 - 1) + s1**4 / (g1 - 1))
    p = 2 * stats.t.sf(abs(m1 - m0) / se, df)
    half = stats.t.isf(0.05, df) * se
    reward = body["reward"]
    assert reward["reference"] == {"units": g0, "decisions": len(truth[0][0]),
                                   "mean": pytest.approx(m0, rel=1e-9)}
    assert reward["recent"]["units"] == g1
    assert reward["diff"] == pytest.approx(m1 - m0, rel=1e-9)
    assert reward["p_value"] == pytest.approx(p, rel=1e-6)
    assert reward["ci_low"] == pytest.approx(m1 - m0 - half, rel=1e-6)
    assert reward["ci_high"] == pytest.approx(m1 - m0 + half, rel=1e-6)
    assert reward["alert"] is bool(p < 0.1)
    assert body["method"]["alpha"] == 0.1
    # Every decision is on the bandit arm, online: its value is the same comparison.
    assert body["model_quality"]["value"]["p_value"] == pytest.approx(p, rel=1e-6)


def test_model_quality_propensity_drift_on_the_bandit_arm_only(app, client, team):
    register(client, team)
    rng = np.random.default_rng(5)
    exp_id, now = experiment_id(app, "homepage-hero"), clock.now()
    rows = []
    for w, start in enumerate((now - 2 * DAY, now - DAY)):
        for i in range(400):
            prop = float(rng.uniform(0.3, 0.9) if w == 0 else rng.uniform(0.2, 0.6))
            rows.append(_row(exp_id, len(rows), start + 60 + i, {}, propensity=prop))
            rows.append(_row(exp_id, len(rows), start + 60 + i, {}, arm="champion",
                             propensity=1.0))
            rows.append(_row(exp_id, len(rows), start + 60 + i, {}, phase="apprentice",
                             propensity=1.0))
    _write(app, rows)
    body = _get(client, team)
    expect = [np.mean([r["propensity"] for r in rows[3 * 400 * w: 3 * 400 * (w + 1)]
                       if r["arm"] == "bandit" and r["phase"] == "online"]) for w in (0, 1)]
    quality = body["model_quality"]["propensity"]
    assert quality["reference"]["mean"] == pytest.approx(expect[0], rel=1e-9)
    assert quality["recent"]["mean"] == pytest.approx(expect[1], rel=1e-9)
    assert quality["reference"]["decisions"] == 400
    welch = stats.ttest_ind([r["propensity"] for r in rows[1200:] if r["arm"] == "bandit"
                             and r["phase"] == "online"],
                            [r["propensity"] for r in rows[:1200] if r["arm"] == "bandit"
                             and r["phase"] == "online"], equal_var=False)
    assert quality["p_value"] == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-300)
    assert quality["alert"] and body["model_quality"]["alert"] and body["alert"]
    assert body["reward"]["alert"] is False and body["reward"]["reason"] == "zero_variance"


def test_empty_experiment_reports_reasons(client, team):
    body = (register(client, team), _get(client, team))[1]
    assert body["features"] == [] and body["alert"] is False
    assert body["reward"]["reason"] == "empty" and body["reward"]["p_value"] is None
    assert body["model_quality"]["value"]["reason"] == "empty"
    assert body["reference"]["decisions"] == 0


def test_one_empty_window_gives_no_psi(app, client, team):
    register(client, team)
    exp_id, now = experiment_id(app, "homepage-hero"), clock.now()
    _write(app, [_row(exp_id, i, now - 0.5 * DAY + i, {"country": "DE"}) for i in range(5)])
    row = _get(client, team)["features"][0]
    assert row["psi"] is None and row["reason"] == "empty" and row["alert"] is False


def test_windows_and_sample_bound(app, client, team):
    register(client, team)
    exp_id = experiment_id(app, "homepage-hero")
    t0 = 1.7e9
    rows = [_row(exp_id, i, t0 + i, {"x": float(i)}) for i in range(1000)]
    _write(app, rows)
    body = _get(client, team, reference_since=clock.iso(t0), reference_until=clock.iso(t0 + 600),
                recent_since=clock.iso(t0 + 600), recent_until=clock.iso(t0 + 1000),
                sample="100")
    assert body["reference"]["decisions"] == 600 and body["recent"]["decisions"] == 400
    assert body["reference"]["sampled"] == 100 and body["recent"]["sampled"] == 100
    assert body["reference"]["sample_limit"] == 100
    x = next(f for f in body["features"] if f["feature"] == "x")
    assert x["psi"] > 0.25 and x["alert"]  # disjoint ranges
    # Every 6th of the reference (0, 6, ..., 594): its deciles bound the first bins.
    assert x["bins"][0]["bin"].startswith("(-inf, ")
    assert body["reference"]["until"] == clock.iso(t0 + 600)


def test_psi_exported_in_metrics_only_once_computed(app, client, team):
    key = f"drift-{uuid.uuid4().hex[:8]}"
    register(client, team, key=key)
    _seed_windows(app, key, shift=True)
    line = f'tailor_drift_psi{{experiment="{key}",feature="country",team="team-a"}}'
    before = client.get("/metrics", headers=team.auth("analyst")).get_data(as_text=True)
    assert line not in before
    body = _get(client, team, key)
    after = client.get("/metrics", headers=team.auth("analyst")).get_data(as_text=True)
    psi = next(f["psi"] for f in body["features"] if f["feature"] == "country")
    value = next(float(ln.split()[-1]) for ln in after.splitlines() if ln.startswith(line))
    assert value == pytest.approx(psi)


def test_other_teams_experiment_is_404_and_client_key_403(client, team, other_team):
    register(client, team)
    _get(client, other_team, status=404)
    _get(client, other_team, status=404, threshold="x")  # not a 400: it is not theirs
    response = client.get("/v1/experiments/homepage-hero/reports/drift",
                          headers=team.auth("client"))
    assert response.status_code == 403


@pytest.mark.parametrize(("params", "field"), [
    ({"recnet_since": "2026-01-01T00:00:00Z"}, "recnet_since"),
    ({"threshold": ["0.1", "0.2"]}, "threshold"),
    ({"recent_since": "yesterday"}, "recent_since"),
    ({"recent_since": "2026-01-02T00:00:00Z", "recent_until": "2026-01-01T00:00:00Z"},
     "recent_until"),
    ({"recent_since": "2026-01-01T00:00:00Z", "recent_until": "2026-01-01T00:00:00Z"},
     "recent_until"),
    ({"reference_since": "2026-01-03T00:00:00Z", "reference_until": "2026-01-02T00:00:00Z",
      "recent_until": "2026-01-04T00:00:00Z"}, "reference_until"),
    ({"reference_until": "2026-01-03T12:00:00Z", "recent_since": "2026-01-03T00:00:00Z",
      "recent_until": "2026-01-04T00:00:00Z"}, "reference_until"),
    ({"threshold": "0"}, "threshold"), ({"threshold": "nan"}, "threshold"),
    ({"threshold": "abc"}, "threshold"), ({"threshold": "11"}, "threshold"),
    ({"alpha": "0"}, "alpha"), ({"alpha": "0.9"}, "alpha"), ({"alpha": "inf"}, "alpha"),
    ({"sample": "0"}, "sample"), ({"sample": "99"}, "sample"),
    ({"sample": "100001"}, "sample"), ({"sample": "1e4"}, "sample"),
    ({"sample": "-5"}, "sample"),
])
def test_bad_parameters_are_400_naming_them(client, team, params, field):
    register(client, team)
    body = _get(client, team, status=400, **params)
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["field"] == field


def test_declared_text_fields_are_not_compared(app, client, team):
    register(client, team, feature_types={"bio": "text", "user.note": "text"})
    exp_id, now = experiment_id(app, "homepage-hero"), clock.now()
    rows = [_row(exp_id, i, now - (1.5 if i < 50 else 0.5) * DAY + i,
                 {"bio": f"text {i}", "user": {"note": f"n{i}", "tier": "gold"}})
            for i in range(100)]
    _write(app, rows)
    assert [f["feature"] for f in _get(client, team)["features"]] == ["user.tier"]
