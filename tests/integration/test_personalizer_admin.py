"""Personalizer's administration endpoints (model, logs, evaluations, feature importances,
applyFromEvaluation) through the Flask client on both databases; the evaluation's numbers
against Tailor's own OPE report on the same window, the exported model against VW itself."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa
import vowpalwabbit

from bandits.features import build_example
from bandits.policy import VWPolicy, checked_pmf
from experiments import clock
from experiments.models import AuditLog, Decision, Experiment, Model, OfflineJob
from tests.conftest import session_of

ROOT = "/personalizer"
Q = {"api-version": "2022-09-01-preview"}
ACTIONS = [{"id": f"a{j}", "features": {"color": c}} for j, c in enumerate(("red", "green",
                                                                          "blue"))]
CUSTOM = "--cb_explore_adf --epsilon 0.1 --power_t 0 -l 0.1 --cb_type mtr -q ca --dsjson"


@pytest.fixture
def admin(client, team):
    body = {"key": "news", "actions": ACTIONS, "unit_field": "user",
            "reward": {"events": {"reward": "value"}, "aggregation": "earliest",
                       "window_seconds": 600},
            "learner": {"exploration": "epsilon",
                        "params": {"epsilon": 0.2, "reward_range": [0, 1]}}}
    assert client.post("/v1/experiments", json=body, headers=team.auth()).status_code == 201
    made = client.post("/v1/keys", json={"scope": "admin", "default_experiment": "news"},
                       headers=team.auth())
    return {"Ocp-Apim-Subscription-Key": made.json["key"]}


def seed(app, n: int = 600, start: float | None = None) -> float:
    """Closed, uniformly logged decisions; the best action is the one matching `segment`."""
    rng = np.random.default_rng(3)
    start = clock.now() - 7200 if start is None else start
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        rows = []
        for i in range(n):
            segment, chosen = int(rng.integers(0, 3)), int(rng.integers(0, 3))
            won = rng.random() < (0.8 if segment == chosen else 0.1)
            created = start + i * 6.0
            rows.append(dict(
                experiment_id=exp.id, event_id=f"e{i}", request_hash="h", arm="bandit",
                policy="bandit", model_version=None, experiment_version=1, phase="online",
                unit_id=f"u{i}", context={"segment": f"s{segment}",
                                          "noise": f"n{rng.integers(0, 4)}"},
                actions=ACTIONS, pmf=[1 / 3] * 3, chosen_index=chosen,
                action_id=ACTIONS[chosen]["id"], propensity=1 / 3, deferred=False,
                activated_at=created, closes_at=created + 600, reward=1.0 if won else None,
                reward_count=int(won), learned_version=None, created_at=created))
        session.execute(sa.insert(Decision), rows)
        session.commit()
    return start


def poll(client, path: str, headers: dict, query: dict | None = None) -> dict:
    deadline = time.monotonic() + 120
    while True:
        response = client.get(path, query_string={**Q, **(query or {})}, headers=headers)
        assert response.status_code == 200, response.json
        if response.json["status"] != "Running" or time.monotonic() > deadline:
            return response.json
        time.sleep(0.2)


def test_model_export_loads_in_vw_and_predicts_like_the_served_model(app, client, admin,
                                                                    tmp_path):
    exported = client.get(f"{ROOT}/model", query_string=Q, headers=admin)
    assert exported.status_code == 200 and exported.mimetype == "application/octet-stream"
    arguments = exported.headers["X-Tailor-Model-Arguments"]
    path = tmp_path / "model.vw"
    path.write_bytes(exported.data)
    vw = vowpalwabbit.Workspace(f"-i {path} --quiet")
    served = VWPolicy(arguments, exported.data)
    pairs = [(a["id"], a["features"]) for a in ACTIONS]
    for context in ({"segment": "s1"}, {"segment": "s2", "noise": "n3"}):
        lines = build_example(context, pairs)
        assert checked_pmf(vw.predict(lines), 3) == pytest.approx(served.pmf(context, pairs))
    vw.finish()
    served.close()


def test_model_import_validates_reset_and_properties(app, client, admin):
    data = client.get(f"{ROOT}/model", query_string=Q, headers=admin).data
    junk = client.put(f"{ROOT}/model", query_string=Q, data=b"not a model", headers=admin)
    assert junk.status_code == 400 and junk.json["error"]["code"] == "InvalidModelImportFormat"
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Model)) == 0
    imported = client.put(f"{ROOT}/model", query_string=Q, data=data, headers={
        **admin, "Content-Type": "application/octet-stream"})
    assert imported.status_code == 204, imported.json
    assert client.delete(f"{ROOT}/model", query_string=Q, headers=admin).status_code == 204
    with session_of(app) as session:
        models = session.execute(sa.select(Model.version, Model.source, Model.created_at)
                                 .order_by(Model.version)).all()
        actions = set(session.scalars(sa.select(AuditLog.action)))
    assert [(m.version, m.source) for m in models] == [(1, "import"), (2, "reset")]
    assert {"model.import", "model.reset"} <= actions
    props = client.get(f"{ROOT}/model/properties", query_string=Q, headers=admin).json
    assert clock.parse_iso(props["creationTime"]) == pytest.approx(models[1].created_at)
    assert clock.parse_iso(props["lastModifiedTime"]) == pytest.approx(models[1].created_at)


def test_logs_properties_and_delete(app, client, admin):
    empty = client.get(f"{ROOT}/logs/properties", query_string=Q, headers=admin).json
    assert empty == {"dateRange": {"from": None, "to": None}}
    start = seed(app, n=20)
    props = client.get(f"{ROOT}/logs/properties", query_string=Q, headers=admin).json
    assert clock.parse_iso(props["dateRange"]["from"]) == pytest.approx(start)
    assert clock.parse_iso(props["dateRange"]["to"]) == pytest.approx(start + 19 * 6.0)
    assert client.delete(f"{ROOT}/logs", query_string=Q, headers=admin).status_code == 204
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)) == 0
        entry = session.scalars(sa.select(AuditLog).where(AuditLog.action == "logs.delete")).one()
    assert entry.details == {"decisions": 20, "rewards": 0, "pending_events": 0}
    assert entry.target == "news"


def test_evaluation_equals_the_ope_report_and_applies_under_the_promotion_rule(
        app, client, team, admin):
    start = seed(app)
    window = {"startTime": clock.iso(start - 1), "endTime": clock.iso(start + 3600)}
    body = {"name": "first", **window, "enablePolicyOptimization": False,
            "policies": [{"name": "custom", "arguments": CUSTOM},
                         {"name": "explore", "arguments": "--cb_explore_adf --epsilon 1"}]}
    created = client.put(f"{ROOT}/evaluations/ev1", query_string=Q, json=body, headers=admin)
    assert created.status_code == 200, created.json
    assert created.json["status"] in ("Running", "Succeeded")
    done = poll(client, f"{ROOT}/evaluations/ev1", admin, window)
    assert done["status"] == "Succeeded", done
    values = {v["name"]: v for v in done["content"]["value"]}
    assert [v["policySource"] for v in done["content"]["value"]] == \
        ["Online", "Baseline", "Random", "Custom", "Custom"]
    names = ",".join(v["candidate"] for v in done["content"]["value"])
    report = client.get("/v1/experiments/news/reports/ope", headers=team.auth("analyst"),
                        query_string={"candidates": names, "since": window["startTime"],
                                      "until": window["endTime"]}).json
    assert report["n_decisions"] == done["content"]["nDecisions"] == 600
    for value in values.values():
        dr = report["candidates"][value["candidate"]]["estimators"]["dr"]
        assert value["summary"]["expectedReward"] == pytest.approx(dr["value"], rel=1e-12)
        assert value["summary"]["confidenceInterval"] == \
            pytest.approx([dr["ci_low"], dr["ci_high"]], rel=1e-12)
        series = value["timeseries"]["data"]
        assert series[-1]["expectedReward"] == pytest.approx(dr["value"], rel=1e-9)
    # Random is 1/3 right: (0.8 + 2 * 0.1) / 3; the custom learner must beat it clearly.
    assert values["Random"]["summary"]["expectedReward"] == pytest.approx(1 / 3, abs=0.06)
    assert values["custom"]["summary"]["expectedReward"] > \
        values["Random"]["summary"]["expectedReward"] + 0.1
    rolling = client.get(f"{ROOT}/evaluations/ev1", headers=admin, query_string={
        **Q, **window, "intervalInMinutes": 60, "window": "Rolling"}).json
    points = rolling["content"]["value"][0]["timeseries"]["data"]
    assert len(points) == 1 and rolling["content"]["intervalInMinutes"] == 60
    listed = client.get(f"{ROOT}/evaluations", query_string=Q, headers=admin).json
    assert [e["id"] for e in listed["value"]] == ["ev1"]
    # On this log the custom setting beats Online with the DR lower bound above 0 (the
    # promotion rule), so it is the optimal policy and may be applied...
    assert values["custom"]["summary"]["vsOnline"]["ci_low"] > 0
    assert done["optimalPolicy"] == "custom"
    worse = client.post(f"{ROOT}/configurations/applyFromEvaluation", query_string=Q,
                        json={"evaluationId": "ev1", "policyName": "explore"}, headers=admin)
    assert worse.status_code == 409 and "not above 0" in worse.json["error"]["message"]
    apply = {"evaluationId": "ev1", "policyName": "custom"}
    applied = client.post(f"{ROOT}/configurations/applyFromEvaluation", query_string=Q,
                          json=apply, headers=admin)
    assert applied.status_code == 204, applied.json
    with session_of(app) as session:
        learner = session.scalars(sa.select(Experiment)).one().config["learner"]
    assert learner["exploration"] == "epsilon"
    assert (learner["params"]["epsilon"], learner["params"]["cb_type"]) == (0.1, "mtr")
    # ...once: the evaluation compared it with a learner that no longer runs.
    again = client.post(f"{ROOT}/configurations/applyFromEvaluation", query_string=Q,
                        json=apply, headers=admin)
    assert again.status_code == 409 and "the learner is now" in again.json["error"]["message"]
    baseline = client.post(f"{ROOT}/configurations/applyFromEvaluation", query_string=Q,
                           json={"evaluationId": "ev1", "policyName": "Baseline"},
                           headers=admin)
    assert baseline.status_code == 400
    assert client.delete(f"{ROOT}/evaluations/ev1", query_string=Q,
                         headers=admin).status_code == 204
    assert client.get(f"{ROOT}/evaluations/ev1", query_string={**Q, **window},
                      headers=admin).status_code == 404


@pytest.mark.parametrize("arguments", ["--cb_explore_adf -f /tmp/model",
                                       "--cb_explore_adf --daemon --port 26542",
                                       "--cb_explore_adf -d /etc/passwd", "--cache_file x",
                                       "--cb_explore_adf --epsilon two"])
def test_evaluation_refuses_untrusted_arguments(app, client, admin, arguments):
    body = {"name": "bad", "startTime": "2026-01-01T00:00:00Z",
            "endTime": "2026-01-02T00:00:00Z",
            "policies": [{"name": "x", "arguments": arguments}]}
    response = client.put(f"{ROOT}/evaluations/bad", query_string=Q, json=body, headers=admin)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "InvalidEvaluationContract"
    assert response.json["error"]["target"] == "policies[0].arguments"
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OfflineJob)) == 0


def test_feature_importance_job_and_tailor_report(app, client, team, admin):
    start = seed(app)
    body = {"name": "fi", "startTime": clock.iso(start - 1),
            "endTime": clock.iso(start + 3600)}
    created = client.put(f"{ROOT}/featureImportances/fi1", query_string=Q, json=body,
                         headers=admin)
    assert created.status_code == 200, created.json
    done = poll(client, f"{ROOT}/featureImportances/fi1", admin)
    assert done["status"] == "Succeeded", done
    scores = done["featureScores"]
    assert (scores[0]["namespace"], scores[0]["featureName"], scores[0]["score"]) == \
        ("context", "segment", 1.0)
    assert {s["featureName"]: s["distinctValues"] for s in scores} == \
        {"segment": 3, "noise": 4, "color": 3}
    assert all(s["featureName"] != "user" for s in scores)
    report = client.get("/v1/experiments/news/reports/features", headers=team.auth("analyst"))
    assert report.status_code == 200, report.json
    assert report.json["featureScores"] == scores
    listed = client.get(f"{ROOT}/featureImportances", query_string=Q, headers=admin).json
    assert len(listed["value"]) == 2
    assert client.delete(f"{ROOT}/featureImportances/fi1", query_string=Q,
                         headers=admin).status_code == 204


def test_analyst_page_shows_the_newest_feature_importance(app, client, team, admin):
    from tests.integration.test_ab_report_pages import sign_in

    seed(app, n=300)
    sign_in(client, team.analyst)
    empty = client.get("/experiments/news").get_data(as_text=True)
    assert 'id="features-empty"' in empty and "/reports/features" in empty
    report = client.get("/v1/experiments/news/reports/features",
                        headers=team.auth("analyst")).json
    html = client.get("/experiments/news").get_data(as_text=True)
    assert f"{report['id']} · computed" in html and 'id="features-table"' in html
    assert html.index('data-feature="context.segment"') < \
        html.index('data-feature="context.noise"')


def test_policy_optimization_replays_the_grid_and_applies_its_winner(app, client, admin):
    start = seed(app)
    window = {"startTime": clock.iso(start - 1), "endTime": clock.iso(start + 3600)}
    body = {"name": "search", **window, "enablePolicyOptimization": True}
    assert client.put(f"{ROOT}/evaluations/opt", query_string=Q, json=body,
                      headers=admin).status_code == 200
    done = poll(client, f"{ROOT}/evaluations/opt", admin, window)
    assert done["status"] == "Succeeded", done
    grid = [v for v in done["content"]["value"] if v["policySource"] == "OfflineExperimentation"]
    # The default learner (epsilon 0.2) is Online already: the grid's other three settings.
    assert [v["name"] for v in grid] == ["epsilon epsilon 0.05", "squarecb gamma_scale 10",
                                         "squarecb gamma_scale 100"]
    best = done["optimalPolicy"]
    winners = [v for v in grid if (v["summary"]["vsOnline"]["ci_low"] or 0) > 0]
    assert winners  # on this log, less exploration than Online's 20% pays, provably
    assert best == max(winners, key=lambda v: v["summary"]["expectedReward"])["name"]
    applied = client.post(f"{ROOT}/configurations/applyFromEvaluation", query_string=Q,
                          json={"evaluationId": "opt", "policyName": best}, headers=admin)
    assert applied.status_code == 204, applied.json
