"""`GET /v1/experiments/{key}/reports/ope` and `/reports/health` on a seeded log, both databases.

The log: a champion arm serving fixed:hero-1 (one-hot pmf) and a bandit arm logging
uniformly over three actions whose click rates are 0.3, 0.6 and 0.05; no click leaves the
reward NULL (the default 0 applies). Expected numbers are recomputed from the seeded rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from statsmodels.stats.proportion import proportion_confint

from bandits.learner import OnlineLearner
from bandits.policy import rng_for, sample_index
from experiments import clock
from experiments.config import bandit_arguments
from experiments.models import Decision, Experiment, Model, OpeReport
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, register

RATES = [0.3, 0.6, 0.05]
URL = "/v1/experiments/homepage-hero/reports/ope"


def seed(app, n_champion: int = 500, n_bandit: int = 1500, skew: float = 0.0) -> dict:
    """Write closed decisions; ``skew`` makes the bandit arm pick hero-1 more than logged."""
    rng = np.random.default_rng(7)
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        start, rows, truth = clock.now() - 86400, [], {"arm": [], "chosen": [], "reward": []}
        for i in range(n_champion + n_bandit):
            arm = "champion" if i < n_champion else "bandit"
            pmf = [1.0, 0.0, 0.0] if arm == "champion" else [1 / 3] * 3
            chosen = sample_index(pmf, rng_for(f"e{i}"))
            if arm == "bandit" and rng.random() < skew:
                chosen = 0
            click = rng.random() < RATES[chosen]
            rows.append(_row(exp, i, arm, pmf, chosen, 1.0 if click else None, start + i))
            truth["arm"].append(arm)
            truth["chosen"].append(chosen)
            truth["reward"].append(1.0 if click else 0.0)
        session.execute(sa.insert(Decision), rows)
        session.commit()
    return {k: np.array(v) for k, v in truth.items()}


def _row(exp: Experiment, i: int, arm: str, pmf: list[float], chosen: int,
         reward: float | None, created: float) -> dict:
    return dict(experiment_id=exp.id, event_id=f"e{i}", request_hash="h", arm=arm, policy=arm,
                model_version=None, experiment_version=1, phase="online", unit_id=None,
                context={"segment": f"s{i % 4}", "hour": i % 24}, actions=ACTIONS, pmf=pmf,
                chosen_index=chosen, action_id=ACTIONS[chosen]["id"], propensity=pmf[chosen],
                deferred=False, activated_at=created, closes_at=created + 600, reward=reward,
                reward_count=int(reward is not None), learned_version=None, created_at=created)


def get(client, team, **query):
    return client.get(URL, query_string=query, headers=team.auth("analyst"))


def test_report_follows_the_contract_and_the_numbers(app, client, team) -> None:
    register(client, team)
    truth = seed(app)
    response = get(client, team, candidates="fixed:hero-2,uniform,fixed:hero-3")
    assert response.status_code == 200, response.json
    report = response.json
    assert list(report)[:4] == ["experiment", "n_decisions", "champion", "candidates"]
    assert report["n_decisions"] == 2000
    champion = report["champion"]
    assert champion["candidate"] == "fixed:hero-1"
    on = truth["reward"][truth["arm"] == "champion"]
    low, high = proportion_confint(on.sum(), on.size, alpha=0.05, method="wilson")
    assert champion["on_policy"]["value"] == pytest.approx(on.mean(), rel=1e-12)
    assert (champion["on_policy"]["ci_low"], champion["on_policy"]["ci_high"]) == \
        pytest.approx((low, high), rel=1e-9)
    propensity = np.where(truth["arm"] == "champion", 1.0, 1 / 3)
    for name, column in (("fixed:hero-2", 1), ("fixed:hero-3", 2)):
        entry = report["candidates"][name]
        weights = (truth["chosen"] == column) / propensity
        assert entry["estimators"]["ips"]["value"] == pytest.approx(
            np.mean(weights * truth["reward"]), rel=1e-9)
        assert entry["estimators"]["snips"]["value"] == pytest.approx(
            np.sum(weights * truth["reward"]) / weights.sum(), rel=1e-9)
        assert entry["ess"] == pytest.approx(weights.sum() ** 2 / (weights**2).sum(), rel=1e-9)
        assert set(entry["estimators"]) >= {"ips", "snips", "dm", "dr", "switch-dr", "dr-os"}
        assert set(entry["vs_champion"]) >= {"diff", "ci_low", "ci_high", "verdict"}
    verdicts = {n: e["vs_champion"]["verdict"] for n, e in report["candidates"].items()}
    assert verdicts == {"fixed:hero-2": "better", "uniform": "better", "fixed:hero-3": "worse"}
    assert report["verdict_estimator"] == "dr" and report["intervals"] == "analytic"
    assert report["health"]["reward_join"]["default_reward_rate"] == pytest.approx(
        np.mean(truth["reward"] == 0))


def test_reports_are_stored_and_bootstrap_intervals_keep_the_estimates(app, client,
                                                                       team) -> None:
    register(client, team)
    seed(app, 100, 300)
    analytic = get(client, team, candidates="fixed:hero-2").json
    boot = get(client, team, candidates="fixed:hero-2", intervals="bootstrap",
               bootstrap_samples=200, seed=3).json
    assert boot["report_id"] == analytic["report_id"] + 1
    for name in ("ips", "dr"):
        a = analytic["candidates"]["fixed:hero-2"]["estimators"][name]
        b = boot["candidates"]["fixed:hero-2"]["estimators"][name]
        assert b["value"] == pytest.approx(a["value"], rel=1e-12)
        assert b["ci_low"] < b["value"] < b["ci_high"] and b["ci_low"] != a["ci_low"]
    latest = client.get(f"{URL}/latest", headers=team.auth("analyst"))
    assert latest.json == boot
    first = client.get(f"{URL}/{analytic['report_id']}", headers=team.auth("analyst"))
    assert first.json == analytic


BAD_QUERIES = [
    ({"candidates": "bogus"}, 400, "is not a candidate"),
    ({"candidates": "model:99"}, 404, "model:99"),
    ({"candidates": "pmf:nobody"}, 404, "no candidate 'nobody'"),
    ({"candidates": "vw:thompson"}, 400, "learner.exploration"),
    ({"intervals": "wild"}, 400, "intervals"),
    ({"bootstrap_samples": "5"}, 400, "bootstrap_samples"),
    ({"estimator": "magic"}, 400, "estimator"),
    ({"since": "last week"}, 400, "since"),
]


def test_bad_requests_are_clear_errors_and_store_nothing(app, client, team) -> None:
    register(client, team)
    for query, status, message in BAD_QUERIES:
        response = get(client, team, **query)
        assert response.status_code == status, query
        assert message in response.json["error"]["message"], query
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OpeReport)) == 0


def test_scopes_and_teams(app, client, team, other_team) -> None:
    register(client, team)
    assert client.get(URL, headers=team.auth("client")).status_code == 403
    assert client.get(URL, headers=other_team.auth("analyst")).status_code == 404
    empty = get(client, team, candidates="uniform")
    assert empty.status_code == 200 and empty.json["n_decisions"] == 0
    assert empty.json["warnings"][0]["code"] == "no_decisions"
    entry = empty.json["candidates"]["uniform"]
    assert entry["estimators"]["dr"]["value"] is None
    assert entry["vs_champion"]["verdict"] == "inconclusive"


def test_supplied_candidate_must_cover_every_decision(app, client, runner, team,
                                                      tmp_path) -> None:
    register(client, team)
    seed(app, 10, 30)
    path = tmp_path / "c.jsonl"
    path.write_text("".join(f'{{"event_id": "e{i}", "pmf": {{"hero-2": 1.0}}}}\n'
                            for i in range(35)))
    result = runner.invoke(args=["candidates", "add", "--experiment", "homepage-hero",
                                 "--name", "two", str(path)])
    assert result.exit_code == 0, result.output
    response = get(client, team, candidates="pmf:two")
    assert response.status_code == 422
    assert "pmf:two has no pmf for 5 of the logged decisions, e.g. e35" in \
        response.json["error"]["message"]
    listed = client.get("/v1/experiments/homepage-hero/candidates",
                        headers=team.auth("analyst")).json
    assert listed["candidates"][0]["decisions"] == 35


BAD_FILES = [
    ('{"event_id": "e0", "pmf": {"hero-1": 1.0}}\n{"event_id": "e1", "pmf": \n',
     "line 2: not valid JSON"),
    ('{"event_id": "e0", "pmf": {"hero-1": 0.5, "hero-2": 0.4}}\n', "line 1: pmf sums to 0.9"),
    ('{"event_id": "e0", "pmf": {"hero-9": 1.0}}\n',
     "line 1: action 'hero-9' was not offered in decision 'e0'"),
    ('{"event_id": "e0", "pmf": {"hero-1": -0.5, "hero-2": 1.5}}\n', "line 1: pmf['hero-1']"),
    ('{"event_id": "zz", "pmf": {"hero-1": 1.0}}\n', "line 1: event_id 'zz' is not a decision"),
    ('{"event_id": "e0", "pmf": {"hero-1": 1.0}}\n{"event_id": "e0", "pmf": {"hero-1": 1}}\n',
     "line 2: event_id 'e0' appears twice"),
]


def test_candidate_file_errors_name_the_line_and_store_nothing(app, client, runner, team,
                                                               tmp_path) -> None:
    register(client, team)
    seed(app, 2, 2)
    path = tmp_path / "bad.jsonl"
    for text, message in BAD_FILES:
        path.write_text(text)
        result = runner.invoke(args=["candidates", "add", "--experiment", "homepage-hero",
                                     "--name", "bad", str(path)])
        assert result.exit_code == 2 and message in result.output, (message, result.output)
    listed = client.get("/v1/experiments/homepage-hero/candidates",
                        headers=team.auth("analyst")).json
    assert listed["candidates"] == []


def test_model_and_vw_candidates(app, client, team) -> None:
    register(client, team)
    seed(app, 100, 400)
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        learner = OnlineLearner(bandit_arguments(exp.config))
        learner.learn({"segment": "s1"}, [(a["id"], a["features"]) for a in ACTIONS], 1, 1.0,
                      1 / 3)
        session.add(Model(experiment_id=exp.id, version=3, arguments=learner.arguments,
                          data=learner.to_bytes(), examples_learned=1, source="learner",
                          created_at=clock.now()))
        session.commit()
    vw = "vw:epsilon,epsilon=0.1,learning_rate=0.5"
    report = get(client, team, candidates=f"model:latest,{vw}").json
    assert set(report["candidates"]) == {"model:3", vw}
    for entry in report["candidates"].values():
        assert entry["estimators"]["snips"]["value"] is not None
        assert 0 < entry["ess"] <= 500


def test_health_flags_choices_that_do_not_follow_the_logged_pmf(app, client, team) -> None:
    register(client, team)
    seed(app, 100, 1500, skew=0.3)
    response = client.get("/v1/experiments/homepage-hero/reports/health",
                          headers=team.auth("analyst"))
    assert response.status_code == 200
    arms = response.json["bandit_srm"]["arms"]
    assert arms["bandit"]["mismatch"] and arms["bandit"]["p_value"] < 1e-6
    assert arms["bandit"]["actions"][0]["id"] == "hero-1"
    assert arms["champion"]["reason"] == "single_bucket" and not arms["champion"]["mismatch"]
    assert response.json["warnings"][0]["code"] == "bandit_srm"


def test_health_passes_on_honest_logs(app, client, team) -> None:
    register(client, team)
    seed(app, 100, 1500)
    arms = client.get("/v1/experiments/homepage-hero/reports/health",
                      headers=team.auth("analyst")).json["bandit_srm"]["arms"]
    assert not arms["bandit"]["mismatch"] and arms["bandit"]["df"] == 2


def test_cli_prints_the_report_as_a_table_or_json(app, client, runner, team) -> None:
    import json

    register(client, team)
    seed(app, 100, 400)
    table = runner.invoke(args=["ope", "--experiment", "homepage-hero", "--candidates",
                                "fixed:hero-2", "--candidates", "uniform"])
    assert table.exit_code == 0, table.output
    assert "champion fixed:hero-1: on its own traffic" in table.output
    assert "vs champion (dr):" in table.output and "-> better" in table.output
    as_json = runner.invoke(args=["ope", "--experiment", "homepage-hero", "--candidates",
                                  "fixed:hero-2", "--json", "--estimator", "snips"])
    report = json.loads(as_json.stdout[as_json.stdout.index("{"):])
    assert report["report_id"] == 2 and report["verdict_estimator"] == "snips"
    bad = runner.invoke(args=["ope", "--experiment", "homepage-hero", "--candidates", "x:y"])
    assert bad.exit_code == 2 and "unknown candidate kind 'x'" in bad.output
