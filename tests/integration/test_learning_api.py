"""GET /learning, and the model snapshot endpoints (list, download, import)."""

from __future__ import annotations

import os
import tempfile

import pytest
import sqlalchemy as sa
import vowpalwabbit

from bandits.learner import OnlineLearner
from experiments.config import bandit_arguments
from experiments.models import AuditLog, Decision, Experiment, Model
from tests.conftest import session_of
from tests.integration.helpers import learn_closed, rank, register

REWARD = {"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 60,
          "default": 0.0}




def _experiment_with_snapshot(client, team, app, decisions: int = 12) -> None:
    register(client, team, key="hero", reward=REWARD)
    for index in range(decisions):
        answer = rank(client, team, key="hero", event_id=f"e{index}",
                      context={"user_id": f"u{index}"}).json
        if answer["action_id"] == "hero-2":
            client.post(f"/v1/events/e{index}/rewards", json={"type": "click"},
                        headers=team.auth("client"))
    learn_closed(app)


def test_status_before_anything_was_learned(client, team):
    register(client, team, key="hero", reward=REWARD)
    rank(client, team, key="hero", event_id="e1")
    body = client.get("/v1/experiments/hero/learning", headers=team.auth("analyst")).json
    assert body["model_version"] is None and body["examples_learned"] == 0
    assert body["model_age_seconds"] is None
    assert body["lag_seconds"] == 0.0 and body["pending_decisions"] == 0
    assert body["in_window_decisions"] == 1
    assert body["progressive"]["window"] == 5000
    assert body["beats_champion"]["verdict"] == "insufficient_data"
    assert body["learner"]["active"] is False


def test_status_reports_backlog_lag_and_progressive_validation(client, team, app):
    _experiment_with_snapshot(client, team, app, decisions=30)
    rank(client, team, key="hero", event_id="late", context={"user_id": "late"})
    with session_of(app) as session:  # closed 30 s ago, not learned yet
        session.execute(sa.update(Decision).where(Decision.event_id == "late")
                        .values(closes_at=Decision.closes_at - 90.0))
        session.commit()
    body = client.get("/v1/experiments/hero/learning", headers=team.auth("analyst")).json
    assert body["model_version"] == 1 and body["examples_learned"] == 30
    assert 0 <= body["model_age_seconds"] < 60
    assert body["pending_decisions"] == 1 and 29 < body["lag_seconds"] < 60
    progressive = body["progressive"]
    assert progressive["decisions"] == 30
    assert progressive["bandit_decisions"] + progressive["champion_decisions"] == 30
    with session_of(app) as session:
        rows = session.execute(sa.select(Decision.arm, Decision.reward)
                               .where(Decision.event_id != "late")).all()
    bandit = [r.reward or 0.0 for r in rows if r.arm == "bandit"]
    assert progressive["bandit_mean_reward"] == pytest.approx(sum(bandit) / len(bandit), abs=1e-6)
    comparison = body["beats_champion"]
    assert comparison["n"] == 30 and comparison["ci_low"] <= comparison["diff"] <= \
        comparison["ci_high"]
    assert comparison["verdict"] in {"better", "worse", "inconclusive"}
    assert body["learner"]["examples_learned_total"] == 30


def test_learning_status_scopes_and_tenancy(client, team, other_team):
    register(client, team, key="hero", reward=REWARD)
    url = "/v1/experiments/hero/learning"
    assert client.get(url, headers=team.auth("client")).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(url, headers=other_team.auth("analyst")).status_code == 404


def test_models_list_and_download_readable_by_vw(client, team, app):
    _experiment_with_snapshot(client, team, app)
    listing = client.get("/v1/experiments/hero/models", headers=team.auth("analyst")).json
    assert listing["serving_version"] == 1
    (entry,) = listing["models"]
    assert entry["version"] == 1 and entry["serving"] and entry["examples_learned"] == 12
    for ref in ("latest", "1"):
        response = client.get(f"/v1/experiments/hero/models/{ref}",
                              headers=team.auth("analyst"))
        assert response.status_code == 200
        assert response.mimetype == "application/octet-stream"
        assert response.headers["X-Tailor-Model-Version"] == "1"
        assert len(response.data) == entry["size_bytes"]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.vw")
            with open(path, "wb") as handle:
                handle.write(response.data)
            workspace = vowpalwabbit.Workspace(f"--quiet -i {path}")  # what `vw -i` does
            pmf = workspace.predict(["shared |c user_id=u1", "|aid id=hero-1", "|aid id=hero-2"])
            workspace.finish()
        assert sum(pmf) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("ref,status", [("7", 404), ("abc", 400), ("-1", 400),
                                        ("latest", 404)])
def test_model_download_errors(client, team, ref, status):
    register(client, team, key="hero", reward=REWARD)
    response = client.get(f"/v1/experiments/hero/models/{ref}", headers=team.auth("analyst"))
    assert response.status_code == status and "error" in response.json


def test_import_a_model_as_a_new_served_version(client, team, app):
    _experiment_with_snapshot(client, team, app)
    data = client.get("/v1/experiments/hero/models/1", headers=team.auth("analyst")).data
    response = client.post("/v1/experiments/hero/models", data=data,
                           headers={**team.auth("admin"),
                                    "Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.json
    assert response.json["version"] == 2 and response.json["source"] == "import"
    assert response.json["serving"] is True
    assert rank(client, team, key="hero", event_id="x", context={"user_id": "z"}) \
        .json["model_version"] in (2, None)  # None: the champion arm answered
    with session_of(app) as session:
        entry = session.scalars(sa.select(AuditLog).where(
            AuditLog.action == "model.import")).one()
        assert entry.target == "hero" and entry.details["version"] == 2
        experiment = session.scalars(sa.select(Experiment)).one()
        assert experiment.version == 1  # an import is not a configuration change


def test_import_with_other_arguments_is_kept_but_not_served(client, team, app):
    _experiment_with_snapshot(client, team, app)
    data = client.get("/v1/experiments/hero/models/1", headers=team.auth("analyst")).data
    arguments = client.get("/v1/experiments/hero/learning",
                           headers=team.auth("analyst")).json["arguments"]
    response = client.post("/v1/experiments/hero/models",
                           query_string={"arguments": arguments + " --l2 0.0"}, data=data,
                           headers=team.auth("admin"))
    assert response.status_code == 201, response.json
    assert response.json["serving"] is False


BAD_IMPORTS = [
    (b"", None, "body"),
    (b"not a model at all", None, "body"),
    (b"\x07\x00\x00\x009.11.9\x00" + b"\x00" * 40, None, "body"),
    (None, "--cb_explore_adf --bit_precision 18 -f /tmp/owned.vw", "arguments"),
    (None, "--cb_explore_adf --bit_precision 18 --data /etc/passwd", "arguments"),
    (None, "--cb_explore_adf --quiet", "arguments"),  # no --bit_precision
    (None, "--cb_explore_adf --bit_precision 40", "arguments"),
    (None, "--quiet --bit_precision 18", "arguments"),  # not --cb_explore_adf
    (None, "--cb_explore_adf --bit_precision 18 --epsilon x", "arguments"),
    (None, "--cb_explore_adf --bit_precision 18 --interactions c:", "arguments"),
]


def test_bad_imports_are_rejected_and_change_nothing(client, team, app):
    config = register(client, team, key="hero", reward=REWARD)
    good = OnlineLearner(bandit_arguments(config)).to_bytes()
    for data, arguments, field in BAD_IMPORTS:
        query = {"arguments": arguments} if arguments else {}
        response = client.post("/v1/experiments/hero/models", data=good if data is None
                               else data, query_string=query, headers=team.auth("admin"))
        assert response.status_code == 400, (arguments, response.json)
        assert response.json["error"]["details"][0]["field"] == field
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Model)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
            AuditLog.action == "model.import")) == 0


def test_import_needs_admin(client, team, other_team):
    register(client, team, key="hero", reward=REWARD)
    for headers, status in ((team.auth("analyst"), 403), (team.auth("client"), 403),
                            (other_team.auth("admin"), 404)):
        response = client.post("/v1/experiments/hero/models", data=b"x", headers=headers)
        assert response.status_code == status
