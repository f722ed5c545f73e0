"""The experiment's analysis settings through the API: guardrails, CUPED, per-unit means,
the correction, and the verdict they lead to."""

from __future__ import annotations

import numpy as np

from tests.integration.helpers import register
from tests.integration.test_ab_report import _decision, _write, experiment_id, report

URL = "/v1/experiments/homepage-hero"
REWARD = {"events": {"click": 1.0, "refund": "value"}, "aggregation": "sum",
          "window_seconds": 600, "default": 0.0}
ANALYSIS = {"cuped_covariate": "user.orders", "per_unit_means": True,
            "guardrails": [{"metric": "event:refund", "margin": 0.01}]}


def _units(app, key: str, lift: float, refund: float, units: dict[str, int],
           seed: int = 3) -> None:
    """Returning units (about 4 visits each) whose click rate grows with their orders."""
    rng = np.random.default_rng(seed)
    exp_id, rows, events, now = experiment_id(app, key), [], [], 1.7e9
    for arm, count in units.items():
        for u in range(count):
            orders = float(rng.poisson(3))
            rate = min(0.02 + 0.07 * orders + (lift if arm == "bandit" else 0.0), 0.95)
            for _ in range(int(rng.geometric(0.25))):
                i = len(rows)
                click = rng.random() < rate
                refunded = arm == "bandit" and rng.random() < refund
                rows.append(_decision(exp_id, i, arm, now + i, unit_id=f"{arm}{u}",
                                      context={"user": {"orders": orders}},
                                      reward=1.0 if click else None))
                if click:
                    events.append((i, "click", 1.0, False))
                if refunded:
                    events.append((i, "refund", 1.0, False))
    _write(app, rows, events)


def test_guardrail_harm_stops_a_winner_and_cuped_reduces_variance(app, client, team):
    register(client, team, reward=REWARD, analysis=ANALYSIS)
    _units(app, "homepage-hero", lift=0.15, refund=0.2, units={"champion": 300, "bandit": 300})
    body = report(client, team)
    row = body["comparisons"][0]
    assert row["metric"] == "reward" and row["significant_sequential"]
    (guard,) = body["guardrails"]
    assert guard["metric"] == "event:refund" and guard["arm"] == "bandit"
    assert guard["harmful"] and not guard["holds"] and guard["harm_ci_low"] > 0.01
    assert body["decision"]["verdict"] == "stop_harm" and body["decision"]["arm"] == "bandit"
    assert "refund" in body["decision"]["reason"]
    cuped = row["cuped"]
    assert cuped["covariate"] == "user.orders" and cuped["variance_reduction"] > 0.1
    assert cuped["se"] < row["se"] and cuped["units_without_covariate"] == 0
    per_unit = [r for r in body["comparisons"] if r["metric"] == "reward:per_unit"]
    assert len(per_unit) == 1 and per_unit[0]["method"] in ("welch", "z_pooled")


def test_a_clean_winner_ships_and_an_srm_is_invalid(app, client, team):
    register(client, team, reward=REWARD)
    _units(app, "homepage-hero", lift=0.15, refund=0.0, units={"champion": 300, "bandit": 300})
    body = report(client, team)
    assert body["decision"]["verdict"] == "ship", body["decision"]
    assert body["decision"]["units_needed"] is None and body["guardrails"] == []
    register(client, team, key="skewed", reward=REWARD)
    _units(app, "skewed", lift=0.15, refund=0.0, units={"champion": 420, "bandit": 300})
    skewed = report(client, team, "skewed")
    assert skewed["srm"]["mismatch"] and skewed["decision"]["verdict"] == "invalid"


def test_analysis_is_patchable_and_bad_settings_are_400(app, client, team):
    register(client, team, reward=REWARD)
    _units(app, "homepage-hero", lift=0.0, refund=0.0, units={"champion": 60, "bandit": 60})
    assert report(client, team)["adjustment"] == "holm"
    admin = team.auth("admin")
    ok = client.patch(URL, json={"analysis": {"multiple_testing": "bh"}}, headers=admin)
    assert ok.status_code == 200, ok.json
    assert report(client, team)["adjustment"] == "bh"
    assert report(client, team, multiple_testing="holm")["adjustment"] == "holm"
    bad = client.patch(URL, json={"analysis": {"guardrails": [{"metric": "event:refnd",
                                                               "margin": 0.1}]}}, headers=admin)
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["field"] == "analysis.guardrails[0].metric"
    wrong = client.get(URL + "/reports/ab?multiple_testing=bonferroni",
                       headers=team.auth("analyst"))
    assert wrong.status_code == 400
