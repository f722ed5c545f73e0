"""Microsoft's `azure-ai-personalizer` 1.0.0b1, unmodified but for endpoint and key, against
gunicorn on SQLite and PostgreSQL: every method of `PersonalizerAdministrationClient`
(service configuration, policy, model, logs, evaluations, applyFromEvaluation, feature
importances), with the answers' meaning checked: the evaluation equals Tailor's OPE report
on the same window, the exported model loads in VW itself and predicts what the server
serves, importances are ranked, configurations round-trip."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import requests
import vowpalwabbit
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError

from bandits.features import build_example
from bandits.learner import OnlineLearner
from bandits.policy import checked_pmf
from experiments.config import bandit_arguments
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

COLORS = ("red", "green", "blue")
ACTIONS = [{"id": f"a{j}", "features": [{"color": c}]} for j, c in enumerate(COLORS)]
EXPERIMENT = {"key": "news", "unit_field": "user",
              "reward": {"events": {"reward": "value"}, "aggregation": "earliest",
                         "window_seconds": 0.5},
              "learner": {"exploration": "epsilon",
                          "params": {"epsilon": 0.2, "reward_range": [0, 1]}}}
CUSTOM = "--cb_explore_adf --epsilon 0.1 --power_t 0 -l 0.1 --cb_type mtr -q ca"
N = 240


@pytest.fixture
def served(database_url, cli):
    server = Server(database_url, extra_env={"TAILOR_MODEL_CHECK_SECONDS": "0"}).start()
    admin = cli("keys", "create", "--team", "shop", "--scope", "admin")
    made = requests.post(f"{server.url}/v1/experiments", json=EXPERIMENT, timeout=10,
                         headers={"Authorization": f"Bearer {admin}"})
    assert made.status_code == 201, made.text
    key = cli("keys", "create", "--team", "shop", "--scope", "admin", "--experiment", "news")
    yield server, key, admin
    server.stop()


def _traffic(client: PersonalizerClient) -> None:
    """N decisions through the data-plane client; the action matching `segment` pays."""
    rng = np.random.default_rng(11)
    for i in range(N):
        segment = int(rng.integers(0, 3))
        ranked = client.rank({"contextFeatures": [{"segment": f"s{segment}"},
                                                  {"noise": f"n{rng.integers(0, 4)}"},
                                                  {"user": f"u{i}"}],
                              "actions": ACTIONS, "eventId": f"ev-{i}"})
        chosen = int(ranked["rewardActionId"][1:])
        won = rng.random() < (0.8 if chosen == segment else 0.1)
        client.reward(f"ev-{i}", {"value": 1.0 if won else 0.0})


def _poll(get, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = get()
        if answer["status"] != "Running" or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def _trained_model(arguments: str) -> bytes:
    learner = OnlineLearner(arguments)
    rng = np.random.default_rng(5)
    pairs = [(a["id"], {"color": c}) for a, c in zip(ACTIONS, COLORS, strict=True)]
    for _ in range(300):
        segment, chosen = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        learner.learn({"segment": f"s{segment}"}, pairs, chosen,
                      1.0 if chosen == segment else 0.0, 1 / 3)
    data = learner.to_bytes()
    learner.close()
    return data


def _check_models(url: str, key: str, tailor_admin: str, tmp_path) -> None:
    credential = AzureKeyCredential(key)
    admin = PersonalizerAdministrationClient(url, credential)
    client = PersonalizerClient(url, credential)
    config = requests.get(f"{url}/v1/experiments/news", timeout=10,
                          headers={"Authorization": f"Bearer {tailor_admin}"}).json()
    arguments = bandit_arguments(config)
    with pytest.raises(HttpResponseError) as refused:
        admin.import_model(io.BytesIO(b"not a VW model"))
    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidModelImportFormat"
    trained = _trained_model(arguments)
    admin.import_model(io.BytesIO(trained))
    exported = b"".join(admin.export_model())
    assert exported == trained
    path = tmp_path / "exported.vw"
    path.write_bytes(exported)
    vw = vowpalwabbit.Workspace(f"-i {path} --quiet")  # VW's own loader, no arguments given
    pairs = [(a["id"], {"color": c}) for a, c in zip(ACTIONS, COLORS, strict=True)]
    for segment in ("s0", "s1", "s2"):
        ranked = client.rank({"contextFeatures": [{"segment": segment}], "actions": ACTIONS})
        served = {r["id"]: r["probability"] for r in ranked["ranking"]}
        offline = checked_pmf(vw.predict(build_example({"segment": segment}, pairs)), 3)
        assert [served[a["id"]] for a in ACTIONS] == pytest.approx(offline, abs=1e-6)
        assert max(served, key=served.get) == f"a{segment[1]}"  # it learned the pattern
    vw.finish()
    properties = admin.get_model_properties()
    admin.reset_model()
    after = admin.get_model_properties()
    assert after["creationTime"] > properties["creationTime"]
    fresh = client.rank({"contextFeatures": [{"segment": "s0"}], "actions": ACTIONS})
    assert [r["probability"] for r in fresh["ranking"]] == pytest.approx([1 / 3] * 3)


def _check_configuration(admin: PersonalizerAdministrationClient) -> None:
    """The i12data methods: service configuration and learning policy round trips."""
    config = admin.get_service_configuration()
    assert config["explorationPercentage"] == pytest.approx(0.2)
    answer = admin.update_service_configuration(config)
    edited = "lastConfigurationEditDate"
    assert {k: v for k, v in answer.items() if k != edited} == \
        {k: v for k, v in config.items() if k != edited}
    assert "--epsilon 0.2" in admin.get_policy()["arguments"]
    updated = admin.update_policy({"name": "custom", "arguments": CUSTOM})
    assert updated["name"] == "custom" and "--epsilon 0.1" in updated["arguments"]
    assert admin.get_policy() == updated
    with pytest.raises(HttpResponseError) as refused:
        admin.update_policy({"name": "evil", "arguments": "--cb_explore_adf -f /tmp/x"})
    assert refused.value.status_code == 400
    default = admin.reset_policy()
    assert "--epsilon 0.2" in default["arguments"] and admin.get_policy() == default


def test_every_administration_method(served, tmp_path):
    server, key, tailor_admin = served
    credential = AzureKeyCredential(key)
    admin = PersonalizerAdministrationClient(server.url, credential)
    _check_configuration(admin)
    _check_models(server.url, key, tailor_admin, tmp_path)  # ends with a reset (uniform)
    started = datetime.now(UTC)
    _traffic(PersonalizerClient(server.url, credential))
    time.sleep(1.0)  # the reward windows (0.5 s) close
    ended = datetime.now(UTC) + timedelta(seconds=1)
    logs = admin.get_log_properties()["dateRange"]
    assert logs["from"].replace("Z", "+00:00") < started.isoformat() < \
        logs["to"].replace("Z", "+00:00")  # the first decisions: the model checks' ranks

    admin.create_evaluation("ev1", {"name": "compare", "startTime": started.isoformat(),
                                    "endTime": ended.isoformat(),
                                    "enablePolicyOptimization": False,
                                    "policies": [{"name": "custom", "arguments": CUSTOM}]})
    done = _poll(lambda: admin.get_evaluation("ev1", start_time=started, end_time=ended))
    assert done["status"] == "Succeeded", done
    values = {v["name"]: v for v in done["content"]["value"]}
    report = requests.get(f"{server.url}/v1/experiments/news/reports/ope", timeout=120,
                          headers={"Authorization": f"Bearer {tailor_admin}"}, params={
                              "candidates": ",".join(v["candidate"] for v in values.values()),
                              "since": started.isoformat(), "until": ended.isoformat()}).json()
    assert report["n_decisions"] == N
    for value in values.values():
        dr = report["candidates"][value["candidate"]]["estimators"]["dr"]
        assert value["summary"]["expectedReward"] == pytest.approx(dr["value"], rel=1e-12)
        assert value["summary"]["confidenceInterval"] == \
            pytest.approx([dr["ci_low"], dr["ci_high"]], rel=1e-12)
    assert [e["id"] for e in admin.list_evaluations()] == ["ev1"]
    best = done["optimalPolicy"]
    if best == "Online":  # the promotion rule refuses what is not better than Online
        with pytest.raises(HttpResponseError) as refused:
            admin.apply_from_evaluation({"evaluationId": "ev1", "policyName": "custom"})
        assert refused.value.status_code == 409
    else:
        admin.apply_from_evaluation({"evaluationId": "ev1", "policyName": best})
        learner = requests.get(f"{server.url}/v1/experiments/news", timeout=10, headers={
            "Authorization": f"Bearer {tailor_admin}"}).json()["learner"]
        assert learner["exploration"] == "epsilon" and learner["params"]["epsilon"] == 0.1
    admin.delete_evaluation("ev1")
    assert list(admin.list_evaluations()) == []

    admin.create_feature_importance("fi1", {"name": "features",
                                            "startTime": started.isoformat(),
                                            "endTime": ended.isoformat()})
    importance = _poll(lambda: admin.get_feature_importance("fi1"))
    assert importance["status"] == "Succeeded", importance
    top = importance["featureScores"][0]
    assert (top["featureName"], top["score"]) == ("segment", 1.0)
    assert [f["id"] for f in admin.list_feature_importances()] == ["fi1"]
    admin.delete_feature_importance("fi1")

    admin.delete_logs()
    assert admin.get_log_properties()["dateRange"] == {"from": None, "to": None}
