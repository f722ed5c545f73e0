"""configurations/service and configurations/policy mapped onto the experiment: round trips,
Personalizer's validation codes, the experiment's history, and what the learner runs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from experiments import clock, retention, rewards
from experiments.models import (
    AuditLog,
    Decision,
    DecisionKey,
    Experiment,
    ExperimentHistory,
    RewardKey,
)
from tests.conftest import session_of

SERVICE = "/personalizer/configurations/service?api-version=2022-09-01-preview"
POLICY = "/personalizer/v1.1-preview.3/configurations/policy"


@pytest.fixture
def loop(client, team):
    body = {"key": "loop", "reward": {"events": {"reward": "value"}, "window_seconds": 600},
            "learner": {"exploration": "epsilon",
                        "params": {"epsilon": 0.2, "reward_range": [0, 1]}}}
    assert client.post("/v1/experiments", json=body, headers=team.auth()).status_code == 201
    return {"Ocp-Apim-Subscription-Key": team.admin, "X-Tailor-Experiment": "loop"}


def test_service_configuration_round_trip(app, client, loop):
    before = client.get(SERVICE, headers=loop)
    assert before.status_code == 200
    assert before.json["learningMode"] == "Online" and before.json["logRetentionDays"] == -1
    wanted = {**before.json, "rewardWaitTime": "PT4H", "defaultReward": -0.5,
              "rewardAggregation": "median", "explorationPercentage": 0.3,
              "learningMode": "Apprentice", "modelExportFrequency": "PT5M",
              "logRetentionDays": 30, "modelRetrainDays": 4, "isAutoOptimizationEnabled": True,
              "autoOptimizationFrequency": "P7D",
              "autoOptimizationStartDate": "2026-12-08T00:00:00Z", "somethingNew": 1}
    put = client.put(SERVICE, json=wanted, headers=loop)
    assert put.status_code == 200, put.json
    got = client.get(SERVICE, headers=loop).json
    for field in ("rewardWaitTime", "defaultReward", "rewardAggregation",
                  "explorationPercentage", "learningMode", "modelExportFrequency",
                  "logRetentionDays", "modelRetrainDays", "isAutoOptimizationEnabled",
                  "autoOptimizationFrequency", "autoOptimizationStartDate"):
        assert got[field] == wanted[field], field
    with session_of(app) as session:
        experiment = session.scalars(sa.select(Experiment)).one()
        history = session.scalars(sa.select(ExperimentHistory)
                                  .order_by(ExperimentHistory.version)).all()
    config = experiment.config
    assert config["reward"] == {**config["reward"], "window_seconds": 14400.0,
                                "default": -0.5, "aggregation": "median"}
    assert config["learner"]["mode"] == "apprentice"
    assert config["learner"]["params"]["epsilon"] == 0.3
    assert config["champion"] == {"type": "baseline"}
    assert config["service"]["model_export_seconds"] == 300.0
    assert [h.change for h in history] == ["create", "personalizer_service"]
    assert "rewardWaitTime" in history[-1].details["fields"]


def test_reward_or_exploration_changes_start_a_new_model(client, loop):
    def arguments() -> str:
        return client.get("/v1/experiments/loop/learning", headers=loop).json["arguments"]

    current = client.get(SERVICE, headers=loop).json
    first = arguments()
    client.put(SERVICE, json={**current, "defaultReward": 0.1}, headers=loop)
    second = arguments()
    assert second != first and "--random_seed 1" in second
    client.put(SERVICE, json={**current, "defaultReward": 0.1, "explorationPercentage": 0.05},
               headers=loop)
    assert arguments() not in (first, second) and "--epsilon 0.05" in arguments()
    client.put(SERVICE, json={**current, "defaultReward": 0.1, "explorationPercentage": 0.05,
                              "logRetentionDays": 7}, headers=loop)
    assert "--epsilon 0.05" in arguments()  # other settings keep the model


def test_timespan_durations_and_idempotent_put(client, loop):
    current = client.get(SERVICE, headers=loop).json
    assert client.put(SERVICE, json={**current, "rewardWaitTime": "00:10:00"},
                      headers=loop).json["rewardWaitTime"] == "PT10M"
    version = client.get("/v1/experiments/loop", headers=loop).json["version"]
    client.put(SERVICE, json=current, headers=loop)
    assert client.get("/v1/experiments/loop", headers=loop).json["version"] == version


@pytest.mark.parametrize(("change", "code", "target"), [
    ({"rewardWaitTime": "ten minutes"}, "InvalidRewardWaitTime", "rewardWaitTime"),
    ({"rewardWaitTime": "P31D"}, "InvalidRewardWaitTime", "rewardWaitTime"),
    ({"logRetentionDays": 0}, "InvalidLogRetentionDays", "logRetentionDays"),
    ({"explorationPercentage": 1.5}, "InvalidServiceConfiguration", "explorationPercentage"),
    ({"learningMode": "Offline"}, "InvalidLearningModeServiceConfiguration", "learningMode"),
    ({"rewardAggregation": "mode"}, "InvalidServiceConfiguration", "rewardAggregation"),
])
def test_invalid_service_configuration(client, loop, change, code, target):
    before = client.get(SERVICE, headers=loop).json
    response = client.put(SERVICE, json={**before, **change}, headers=loop)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == code and response.json["error"]["target"] == target
    assert client.get(SERVICE, headers=loop).json == before


def test_client_keys_cannot_change_configuration(client, team, loop):
    headers = {**loop, "Ocp-Apim-Subscription-Key": team.client}
    response = client.put(SERVICE, json={"defaultReward": 1}, headers=headers)
    assert response.status_code == 403 and response.json["error"]["code"] == "Forbidden"


def test_policy_get_put_delete(app, client, loop):
    default = client.get(POLICY, headers=loop).json
    assert set(default) == {"name", "arguments"}
    put = client.put(POLICY, headers=loop, json={
        "name": "squarecb-20", "arguments": "--cb_explore_adf --squarecb --gamma_scale 20"})
    assert put.status_code == 200, put.json
    assert put.json["name"] == "squarecb-20" and "--squarecb" in put.json["arguments"]
    assert "--gamma_scale 20" in put.json["arguments"]
    learning = client.get("/v1/experiments/loop/learning", headers=loop).json
    assert learning["arguments"] == put.json["arguments"]
    reset = client.delete(POLICY, headers=loop)
    assert reset.status_code == 200
    assert "--epsilon 0.2" in reset.json["arguments"]
    assert "--learning_rate 0.001" in reset.json["arguments"]
    with session_of(app) as session:
        changes = list(session.scalars(sa.select(ExperimentHistory.change)))
    assert changes.count("personalizer_policy") == 2


@pytest.mark.parametrize("arguments", ["--cb_explore_adf -f /tmp/model", "--daemon --port 26542",
                                       "-d /etc/passwd", "--epsilon 0.1 --invert_hash x"])
def test_policy_with_file_or_port_options_is_refused(client, loop, arguments):
    before = client.get(POLICY, headers=loop).json
    response = client.put(POLICY, headers=loop, json={"name": "x", "arguments": arguments})
    assert response.status_code == 400
    assert response.json["error"]["code"] == "InvalidPolicyConfiguration"
    assert client.get(POLICY, headers=loop).json == before


@pytest.mark.parametrize(("aggregation", "expected"), [
    ("earliest", 0.2), ("sum", 1.5), ("average", 0.5), ("median", 0.3), ("min", 0.2),
    ("max", 1.0)])
def test_six_aggregations_join_like_the_learning_loop(app, client, team, aggregation,
                                                      expected):
    client.post("/v1/experiments", headers=team.auth(), json={
        "key": f"agg-{aggregation}", "reward": {"events": {"reward": "value"},
                                                "aggregation": aggregation},
        "learner": {"exploration": "epsilon", "params": {"epsilon": 0.2, "reward_range": [0, 1]}}})
    headers = {"Authorization": f"Bearer {team.client}"}
    ranked = client.post(f"/v1/experiments/agg-{aggregation}/rank", headers=headers,
                         json={"actions": [{"id": "a"}, {"id": "b"}]}).json
    for value in (0.2, 1.0, 0.3):
        client.post(f"/v1/events/{ranked['event_id']}/rewards", headers=headers,
                    json={"type": "reward", "value": value})
    rows = client.get(f"/v1/experiments/agg-{aggregation}/decisions",
                      headers=team.auth()).json["decisions"]
    assert rows[0]["reward"] == pytest.approx(expected)
    assert rewards.aggregate(aggregation, [0.2, 1.0, 0.3]) == pytest.approx(expected)


def test_log_retention_deletes_old_decisions_and_rewards(app, client, team, loop, runner):
    client.post("/v1/experiments", headers=team.auth(), json={"key": "kept"})
    for key in ("loop", "kept"):
        headers = {"Authorization": f"Bearer {team.client}"}
        ranked = client.post(f"/v1/experiments/{key}/rank", headers=headers,
                             json={"actions": [{"id": "a"}, {"id": "b"}]}).json
        client.post(f"/v1/events/{ranked['event_id']}/rewards", headers=headers,
                    json={"type": "reward", "value": 1.0, "idempotency_key": key})
    client.post("/personalizer/v1.0/events/early/reward", json={"value": 1}, headers=loop)
    current = client.get(SERVICE, headers=loop).json
    client.put(SERVICE, json={**current, "logRetentionDays": 2}, headers=loop)
    with session_of(app) as session:
        assert retention.apply(session, now=clock.now() + 1 * 86400) == []
        done = retention.apply(session, now=clock.now() + 3 * 86400)
        assert [(d.experiment, d.decisions, d.rewards, d.pending) for d in done] == [
            ("loop", 1, 1, 1)]
        left = session.execute(sa.select(Experiment.key, sa.func.count(Decision.id))
                               .join(Decision, Decision.experiment_id == Experiment.id)
                               .group_by(Experiment.key)).all()
        assert dict(left) == {"kept": 1}
        assert session.scalar(sa.select(sa.func.count()).select_from(RewardKey)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(DecisionKey)) == 1
        assert session.scalar(sa.select(AuditLog.action).where(
            AuditLog.action == "logs.retention")) == "logs.retention"
    assert "nothing older" in runner.invoke(args=["retention"]).output
