"""Promotion on the evidence of a stored OPE report, forced promotion, and rollback."""

from __future__ import annotations

import sqlalchemy as sa

from bandits.learner import OnlineLearner
from experiments import clock
from experiments.config import bandit_arguments
from experiments.models import AuditLog, Experiment, ExperimentHistory, Model
from tests.conftest import session_of
from tests.integration.helpers import register
from tests.integration.test_ope_report import URL, seed

BASE = "/v1/experiments/homepage-hero"


def promote(client, team, **body):
    return client.post(f"{BASE}/promote", json=body, headers=team.auth("admin"))


def champion(client, team) -> dict:
    return client.get(BASE, headers=team.auth("analyst")).json["champion"]


def history(app) -> list[ExperimentHistory]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(ExperimentHistory)
                                    .order_by(ExperimentHistory.version)))


def report(client, team, candidates: str) -> dict:
    response = client.get(URL, query_string={"candidates": candidates},
                          headers=team.auth("analyst"))
    assert response.status_code == 200, response.json
    return response.json


def test_promotion_needs_a_better_verdict_and_is_recorded(app, client, team) -> None:
    register(client, team)
    seed(app, 200, 800)
    refused = promote(client, team, candidate="fixed:hero-2")
    assert refused.status_code == 409
    assert "no stored OPE report evaluated fixed:hero-2" in refused.json["error"]["message"]
    evidence = report(client, team, "fixed:hero-2,fixed:hero-3")
    worse = promote(client, team, candidate="fixed:hero-3")
    assert worse.status_code == 409 and "says worse" in worse.json["error"]["message"]
    assert worse.json["error"]["details"][0]["code"] == "not_better"
    assert champion(client, team) == {"type": "fixed", "action_id": "hero-1"}
    accepted = promote(client, team, candidate="fixed:hero-2")
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["report_id"] == evidence["report_id"]
    assert champion(client, team) == {"type": "fixed", "action_id": "hero-2"}
    last = history(app)[-1]
    assert last.change == "promote" and last.actor.startswith("key:")
    assert last.details["candidate"] == "fixed:hero-2" and last.details["verdict"] == "better"
    assert last.details["forced"] is False and last.details["report_id"] == evidence["report_id"]
    with session_of(app) as session:
        entry = session.scalars(sa.select(AuditLog).where(
            AuditLog.action == "experiment.promote")).one()
    assert entry.target == "homepage-hero" and entry.details["candidate"] == "fixed:hero-2"
    # The old report compared with hero-1, which is no longer the champion.
    again = promote(client, team, candidate="fixed:hero-3")
    assert again.status_code == 409 and "the champion is now fixed:hero-2" in \
        again.json["error"]["message"]
    same = promote(client, team, candidate="fixed:hero-2")
    assert same.status_code == 409 and "already the champion" in same.json["error"]["message"]


def test_stale_reports_are_not_evidence(app, client, team) -> None:
    register(client, team)
    seed(app, 100, 600)
    report(client, team, "fixed:hero-2")
    app.config["PROMOTION_MAX_REPORT_AGE_SECONDS"] = 0.0
    old = promote(client, team, candidate="fixed:hero-2")
    assert old.status_code == 409 and "h old" in old.json["error"]["message"]
    app.config["PROMOTION_MAX_REPORT_AGE_SECONDS"] = 3600.0
    with session_of(app) as session:  # 20% more decisions since the report
        exp_id = session.scalar(sa.select(Experiment.id))
        # SQLite has no id sequence for decisions (models.NextId): number the copies.
        new_id = "nextval('decisions_id_seq')" if session.bind.dialect.name == "postgresql" \
            else "id + (SELECT max(id) FROM decisions)"
        session.execute(sa.text(
            "INSERT INTO decisions (id, experiment_id, event_id, request_hash, arm, policy, "
            "experiment_version, phase, context, actions, pmf, chosen_index, action_id, "
            "propensity, deferred, activated_at, closes_at, reward_count, created_at) "
            f"SELECT {new_id}, experiment_id, event_id || '-x', request_hash, arm, policy, "
            "experiment_version, phase, context, actions, pmf, chosen_index, action_id, "
            "propensity, deferred, activated_at, closes_at, reward_count, created_at "
            "FROM decisions WHERE experiment_id = :e AND id <= 140"), {"e": exp_id})
        session.commit()
    grown = promote(client, team, candidate="fixed:hero-2")
    assert grown.status_code == 409 and "there are 840 now" in grown.json["error"]["message"]


def test_force_rollback_and_what_cannot_be_champion(app, client, team) -> None:
    register(client, team)
    seed(app, 50, 150)
    forced = promote(client, team, candidate="fixed:hero-3", force=True, reason="ops test")
    assert forced.status_code == 200
    assert forced.json["forced"] is True and forced.json["overridden"] == ["no_report"]
    model = _store_model(app)
    latest = promote(client, team, candidate="model:latest", force=True)
    assert latest.status_code == 200 and latest.json["candidate"] == f"model:{model}"
    assert champion(client, team) == {"type": "model", "version": model}
    for expected in ({"type": "fixed", "action_id": "hero-3"},
                     {"type": "fixed", "action_id": "hero-1"}):
        back = client.post(f"{BASE}/rollback", headers=team.auth("admin"))
        assert back.status_code == 200 and champion(client, team) == expected
    assert [h.change for h in history(app)] == ["create", "promote", "promote", "rollback",
                                                "rollback"]
    done = client.post(f"{BASE}/rollback", headers=team.auth("admin"))
    assert done.status_code == 409 and "nothing to roll back" in done.json["error"]["message"]
    for body, status, message in [
        ({"candidate": "vw:squarecb"}, 400, "learner setting evaluated by replaying"),
        ({"candidate": "pmf:greedy"}, 400, "cannot decide new ones"),
        ({"candidate": "fixed:hero-9"}, 400, "not in the action catalog"),
        ({"candidate": "model:99"}, 404, "no model version 99"),
        ({"candidate": "fixed:hero-2", "force": "yes"}, 400, "force"),
        ({"candidate": "fixed:hero-2", "colour": 1}, 400, "unknown field"),
        ({}, 400, "candidate"),
    ]:
        response = promote(client, team, **body)
        assert response.status_code == status, body
        assert message in response.json["error"]["message"], body
    assert client.post(f"{BASE}/promote", json={"candidate": "uniform"},
                       headers=team.auth("analyst")).status_code == 403
    assert len(history(app)) == 5


def _store_model(app) -> int:
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        learner = OnlineLearner(bandit_arguments(exp.config))
        session.add(Model(experiment_id=exp.id, version=4, arguments=learner.arguments,
                          data=learner.to_bytes(), examples_learned=0, source="learner",
                          created_at=clock.now()))
        session.commit()
    return 4


def test_a_rollback_to_a_champion_no_longer_in_the_catalog_is_refused(app, client, team):
    """A rollback's configuration is what validation makes of it (registry.stage_change):
    the champion it restores must still be in the catalog, else a 400 that changes nothing."""
    created = register(client, team)
    assert promote(client, team, candidate="fixed:hero-3", force=True).status_code == 200
    actions = [a for a in created["actions"] if a["id"] != "hero-1"]
    patched = client.patch(BASE, json={"actions": actions}, headers=team.auth("admin"))
    assert patched.status_code == 200, patched.json
    refused = client.post(f"{BASE}/rollback", headers=team.auth("admin"))
    assert refused.status_code == 400, refused.json
    assert refused.json["error"]["details"][0]["field"] == "champion.action_id"
    assert champion(client, team) == {"type": "fixed", "action_id": "hero-3"}
    assert [h.change for h in history(app)] == ["create", "promote", "update"]
