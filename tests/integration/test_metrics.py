"""GET /metrics: Prometheus text, route templates, counters, and database-derived gauges."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.db import dispose as db_dispose
from app.db import engine_of
from experiments import clock
from experiments.models import Decision, Experiment, Model
from tests.conftest import make_team, session_of
from tests.integration.helpers import rank, register


def scrape(client, headers=None) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_decisions_and_rewards_are_counted(client, team):
    register(client, team)
    before = scrape(client)
    answer = rank(client, team, event_id="m-1").json
    client.post("/v1/events/m-1/rewards", json={"type": "click", "idempotency_key": "k"},
                headers=team.auth("client"))
    client.post("/v1/events/m-1/rewards", json={"type": "click", "idempotency_key": "k"},
                headers=team.auth("client"))
    client.get("/v1/no/such/path", headers=team.auth("client"))
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/v1/experiments/<key>/rank"
    assert delta("tailor_http_requests_total", method="POST", endpoint=route,
                 status="200") == 1
    assert delta("tailor_http_request_duration_seconds_count", method="POST",
                 endpoint=route) == 1
    assert delta("tailor_http_request_duration_seconds_bucket", method="POST",
                 endpoint=route, le="+Inf") == 1
    assert delta("tailor_http_requests_total", method="GET", endpoint="unmatched",
                 status="404") == 1
    assert delta("tailor_decisions_total", team="team-a", experiment="homepage-hero",
                 arm=answer["arm"]) == 1
    assert delta("tailor_rewards_total", outcome="accepted") == 1
    assert delta("tailor_rewards_total", outcome="duplicate") == 1


def test_model_version_age_and_learner_lag_come_from_the_database(app, client, team):
    register(client, team)
    for event in ("old", "new"):
        assert rank(client, team, event_id=event).status_code == 200
    samples = scrape(client)
    labels = {"team": "team-a", "experiment": "homepage-hero"}
    assert value(samples, "tailor_model_version", **labels) == 0
    assert value(samples, "tailor_learner_lag_seconds", **labels) == 0
    assert value(samples, "tailor_metrics_database_up") == 1

    now = clock.now()
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id))
        session.execute(sa.update(Decision).where(Decision.event_id == "old")
                        .values(closes_at=now - 120))
        session.execute(sa.update(Decision).where(Decision.event_id == "new")
                        .values(closes_at=now - 30, learned_version=None))
        session.add(Model(experiment_id=experiment_id, version=3, arguments="--cb_explore_adf",
                          data=b"", examples_learned=10, source="test", created_at=now - 60))
        session.commit()
    samples = scrape(client)
    assert value(samples, "tailor_model_version", **labels) == 3
    assert 59 <= value(samples, "tailor_model_age_seconds", **labels) < 120
    assert 119 <= value(samples, "tailor_learner_lag_seconds", **labels) < 180

    with session_of(app) as session:
        session.execute(sa.update(Decision).values(learned_version=3))
        session.commit()
    assert value(scrape(client), "tailor_learner_lag_seconds", **labels) == 0


def test_database_errors_are_counted(app, client):
    before = value(scrape(client), "tailor_database_errors_total", kind="other",
                   disconnect="false")
    with pytest.raises(sa.exc.DBAPIError), engine_of(app).connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    after = scrape(client)
    errors = sum(v for (name, _), v in after.items() if name == "tailor_database_errors_total")
    assert errors >= before + 1


def test_private_metrics_need_an_analyst_or_admin_key(database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "METRICS_PUBLIC": False})
    try:
        client = app.test_client()
        keys = make_team(app, "ops")
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics").json["error"]["code"] == "unauthorized"
        assert client.get("/metrics", headers=keys.auth("client")).status_code == 403
        assert "tailor_http_requests_total" in client.get(
            "/metrics", headers=keys.auth("analyst")).get_data(as_text=True)
        assert client.get("/metrics", headers=keys.auth("admin")).status_code == 200
    finally:
        db_dispose(app)


def test_metrics_answer_when_the_database_is_down(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/../x.db",
                      "TESTING": True})
    try:
        # Not migrated: the gauges' queries fail, the counters are still served.
        samples = scrape(app.test_client())
        assert value(samples, "tailor_metrics_database_up") == 0
    finally:
        db_dispose(app)
