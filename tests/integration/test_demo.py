"""`tailor demo` seeds an experiment that every report and page can show, with numbers
that agree with each other."""

from __future__ import annotations

import re

import pytest

VISITS, USERS = 240, 50


def test_demo_then_every_report_and_page(runner, client):
    result = runner.invoke(args=["demo", "--visits", str(VISITS), "--users", str(USERS),
                                 "--minutes", "3", "--key", "demo"])
    assert result.exit_code == 0, result.output
    analyst = re.search(r"analyst \(pages and reports\): (tlr_\S+)", result.output).group(1)
    auth = {"Authorization": f"Bearer {analyst}"}
    assert f"{VISITS} decisions" in result.output
    ab = client.get("/v1/experiments/demo/reports/ab", headers=auth).json
    arms = ab["arms"]
    assert set(arms) == {"champion", "bandit"}
    assert sum(row["n"] for row in arms.values()) == VISITS
    for row in arms.values():
        assert 0 < row["units"] < row["n"]  # users come back
        assert 0 < row["mean"] < 4 and row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert sum(row["units"] for row in arms.values()) <= USERS

    learning = client.get("/v1/experiments/demo/learning", headers=auth).json
    assert learning["model_version"] >= 2  # learned during the traffic, and at the end
    assert learning["examples_learned"] == VISITS and learning["pending_decisions"] == 0
    progressive = learning["progressive"]
    assert progressive["bandit_mean_reward"] == pytest.approx(arms["bandit"]["mean"], abs=1e-6)
    assert progressive["champion_mean_reward"] == pytest.approx(arms["champion"]["mean"], abs=1e-6)

    ope = client.get("/v1/experiments/demo/reports/ope?candidates=model:latest,uniform",
                     headers=auth).json
    assert ope["n_decisions"] == VISITS
    assert ope["champion"]["on_policy"]["value"] == pytest.approx(arms["champion"]["mean"])
    model = next(v for k, v in ope["candidates"].items() if k.startswith("model:"))
    assert model["estimators"]["snips"]["value"] > 0

    health = client.get("/v1/experiments/demo/reports/health", headers=auth).json
    assert health["reward_join"]["closed_decisions"] == VISITS
    rewarded = VISITS - health["reward_join"]["default_reward_decisions"]
    assert 0 < rewarded <= health["reward_join"]["reward_events"]
    assert health["bandit_srm"]["arms"]["bandit"]["n"] == arms["bandit"]["n"]

    listing = client.get("/experiments", headers=auth)
    assert listing.status_code == 200 and "demo" in listing.get_data(as_text=True)
    page = client.get("/experiments/demo", headers=auth)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and str(arms["bandit"]["n"]) in html.replace(",", "")

    again = runner.invoke(args=["demo", "--visits", "50", "--users", "10", "--key", "demo"])
    assert again.exit_code != 0
    assert "already exists" in again.output and "Traceback" not in again.output
