"""Personal data and key secrets never reach the database or the logs in clear; a unit can be
looked up by its clear id and erased across every experiment of its team."""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

import sqlalchemy as sa

from experiments import pii
from experiments.models import Decision, RewardEvent
from tests.conftest import session_of
from tests.integration.helpers import register

JANE = "jane.doe@example.com"
PHONE = "+49 170 1234567"
BOB = "bob@example.org"
CARD = "4111 1111 1111 1111"
CITY_STREET = "Hauptstrasse 12"
PII_VALUES = [JANE, PHONE, BOB, CARD, "4111111111111111", CITY_STREET, "Jane Doe"]


def dump(app, database_url: str) -> str:
    """Every stored text: SQLite's SQL dump, or each text/json column of PostgreSQL."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            return "\n".join(connection.iterdump())
        finally:
            connection.close()
    parts = []
    with session_of(app) as session:
        columns = session.execute(sa.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'json', 'jsonb')")).all()
        for table, column in columns:
            rows = session.execute(sa.text(f'SELECT "{column}"::text FROM "{table}"')).scalars()
            parts.extend(str(v) for v in rows)
    return "\n".join(parts)


def test_no_secret_or_pii_in_the_database_or_logs(app, client, team, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    register(client, team, key="shop", unit_field="email", pii_fields=["user.phone"])
    made = client.post("/v1/keys", json={"scope": "client", "name": "web",
                                         "default_experiment": "shop"}, headers=team.auth())
    new_key = made.json["key"]
    context = {"email": JANE, "user": {"phone": PHONE, "segment": "vip"},
               "note": f"ask {BOB}", "payment": CARD, "name": "Jane Doe",
               "address": {"street": CITY_STREET}, "hour": 9}
    ranked = client.post("/v1/experiments/shop/rank", json={"context": context},
                         headers={"Authorization": f"Bearer {new_key}"})
    assert ranked.status_code == 200, ranked.json
    assert {w["field"] for w in ranked.json["warnings"]} == {"context.note", "context.payment"}
    personalizer = client.post("/personalizer/v1.0/rank", headers={
        "Ocp-Apim-Subscription-Key": new_key}, json={
        "contextFeatures": [{"user": {"email": JANE, "phone": PHONE}}, {"card": 4111111111111111}],
        "actions": [{"id": "hero-1", "features": [{"c": "x"}]}]})
    assert personalizer.status_code == 201, personalizer.json
    hashed = client.post("/v1/experiments/shop/rank", json={"context": {"phone": PHONE},
                                                            "unit_id": "u-1"},
                         headers=team.auth("client"))
    assert hashed.status_code == 200 and "warnings" not in hashed.json  # a default field
    client.patch("/v1/experiments/shop", json={"pii_mode": "reject"}, headers=team.auth())
    rejected = client.post("/v1/experiments/shop/rank", json={"context": {"note": BOB}},
                           headers=team.auth("client"))
    assert rejected.status_code == 422 and rejected.json["error"]["details"][0]["field"] == \
        "context.note"
    stored = dump(app, database_url)
    secrets = [k.split("_", 2)[2] for k in (team.admin, team.client, team.analyst, new_key)]
    for value in PII_VALUES + secrets:
        assert value not in stored, f"{value!r} is in the database in clear"
        assert value not in caplog.text, f"{value!r} is in the logs"
    assert "pii:" in stored  # the values are there, hashed


def test_decisions_are_found_by_the_clear_unit_id_and_returned_as_logged(app, client, team):
    register(client, team, key="shop", unit_field="email")
    for i in range(3):
        client.post("/v1/experiments/shop/rank", headers=team.auth("client"),
                    json={"context": {"email": JANE, "n": i}, "event_id": f"e{i}"})
    client.post("/v1/experiments/shop/rank", headers=team.auth("client"),
                json={"context": {"email": BOB}, "event_id": "other"})
    client.post("/v1/events/e1/rewards", json={"type": "click"}, headers=team.auth("client"))
    page = client.get(f"/v1/experiments/shop/decisions?unit_id={quote(JANE)}",
                      headers=team.auth("analyst")).json["decisions"]
    assert [d["event_id"] for d in page] == ["e0", "e1", "e2"]
    with session_of(app) as session:
        rows = session.scalars(sa.select(Decision).where(Decision.event_id.in_(
            ["e0", "e1", "e2"])).order_by(Decision.id)).all()
    for logged, row in zip(page, rows, strict=True):
        assert logged["unit_id"] == row.unit_id and pii.is_hashed(row.unit_id)
        assert logged["context"] == row.context and logged["pmf"] == row.pmf
        assert logged["propensity"] == row.propensity and logged["actions"] == row.actions
    assert [r["type"] for r in page[1]["rewards"]] == ["click"]
    by_hash = client.get(f"/v1/experiments/shop/decisions?unit_id={rows[0].unit_id}",
                         headers=team.auth("analyst")).json["decisions"]
    assert len(by_hash) == 3


def test_erasure_across_experiments_keeps_the_rest_and_audits_without_the_clear_id(
        app, client, team, other_team):
    register(client, team, key="shop", unit_field="email")
    register(client, team, key="news", unit_field="user_id")
    register(client, other_team, key="shop", unit_field="email")
    for owner, key, context, event in [
            (team, "shop", {"email": JANE}, "s1"), (team, "shop", {"email": JANE}, "s2"),
            (team, "shop", {"email": BOB}, "s3"), (team, "news", {"user_id": JANE}, "n1"),
            (other_team, "shop", {"email": JANE}, "o1")]:
        r = client.post(f"/v1/experiments/{key}/rank", json={"context": context,
                                                             "event_id": event},
                        headers=owner.auth("client"))
        assert r.status_code == 200
    for event in ("s1", "s3", "n1"):
        client.post(f"/v1/events/{event}/rewards", json={"type": "click"},
                    headers=team.auth("client"))
    client.post("/v1/events/o1/rewards", json={"type": "click"},
                headers=other_team.auth("client"))
    erased = client.delete(f"/v1/units/{quote(JANE)}", headers=team.auth())
    assert erased.status_code == 200, erased.json
    assert erased.json["decisions"] == 3 and erased.json["rewards"] == 2
    assert erased.json["experiments"] == {"news": 1, "shop": 2}
    with session_of(app) as session:
        events = set(session.scalars(sa.select(Decision.event_id)))
        reward_events = set(session.scalars(sa.select(RewardEvent.event_id)))
    assert events == {"s3", "o1"} and reward_events == {"s3", "o1"}
    again = client.delete(f"/v1/units/{quote(JANE)}", headers=team.auth())
    assert again.status_code == 200 and again.json["decisions"] == 0  # idempotent
    entry = client.get("/v1/audit?action=unit.erase", headers=team.auth()).json["entries"]
    assert len(entry) == 2 and JANE not in str(entry)
    assert entry[0]["target"] == erased.json["unit"] and pii.is_hashed(entry[0]["target"])
    assert entry[0]["details"]["decisions"] == 3
    report = client.get("/v1/experiments/shop/decisions", headers=team.auth("analyst")).json
    assert [d["event_id"] for d in report["decisions"]] == ["s3"]
    assert client.delete(f"/v1/units/{quote(JANE)}",
                         headers=team.auth("client")).status_code == 403
