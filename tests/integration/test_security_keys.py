"""API keys: creation rules, rotation, revocation, the CLI, rate limits and size limits."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import create_app
from app.db import dispose as db_dispose
from experiments.models import ApiKey, Decision, RewardEvent
from tests.conftest import make_team, session_of
from tests.integration.helpers import register


def bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


BAD_KEY_REQUESTS = [  # (body, status, field named in the error)
    ({"scope": "root"}, 400, "scope"),
    ({}, 400, "scope"),
    ({"scope": "client", "name": ""}, 400, "name"),
    ({"scope": "client", "name": 7}, 400, "name"),
    ({"scope": "client", "name": "x" * 129}, 400, "name"),
    ({"scope": "client", "default_experiment": 3}, 400, "default_experiment"),
    ({"scope": "client", "default_experiment": "nope"}, 404, "default_experiment"),
    ({"scope": "client", "surprise": 1}, 400, "surprise"),
    ({"scope": "client", "rate_limits": {"rank": {"rate": -1}}}, 400, "rate_limits.rank.rate"),
    ({"scope": "client", "rate_limits": {"search": {"rate": 1}}}, 400, "rate_limits.search"),
    ({"scope": "client", "rate_limits": {"rank": {"rate": 5, "burst": 0.5}}}, 400,
     "rate_limits.rank.burst"),
]


def test_bad_key_requests_are_refused_and_create_nothing(client, team):
    before = client.get("/v1/keys", headers=team.auth()).json["keys"]
    for body, status, field in BAD_KEY_REQUESTS:
        response = client.post("/v1/keys", json=body, headers=team.auth())
        assert response.status_code == status, (body, response.json)
        assert response.json["error"]["details"][0]["field"] == field
    assert client.get("/v1/keys", headers=team.auth()).json["keys"] == before


def test_create_with_default_experiment_and_the_key_works(client, team):
    register(client, team)
    made = client.post("/v1/keys", json={"scope": "client", "name": "web",
                                         "default_experiment": "homepage-hero"},
                       headers=team.auth())
    assert made.status_code == 201
    body = made.json
    assert body["key"].startswith(f"tlr_{body['key_id']}_")
    assert body["default_experiment"] == "homepage-hero" and body["name"] == "web"
    listed = client.get("/v1/keys", headers=team.auth()).json["keys"]
    assert all("key" not in k and "secret" not in str(k) for k in listed)
    rank = client.post("/v1/experiments/homepage-hero/rank", json={}, headers=bearer(body["key"]))
    assert rank.status_code == 200


def test_secrets_are_stored_only_as_salted_hashes(app, client, team):
    plain = client.post("/v1/keys", json={"scope": "client"}, headers=team.auth()).json["key"]
    secret = plain.split("_", 2)[2]
    with session_of(app) as session:
        rows = session.scalars(sa.select(ApiKey)).all()
    assert all(secret not in (r.secret_hash + r.salt) for r in rows)
    assert len({r.salt for r in rows}) == len(rows)


def test_revoked_key_is_refused_at_once(app, client, team):
    made = client.post("/v1/keys", json={"scope": "client"}, headers=team.auth()).json
    register(client, team)
    assert client.post("/v1/experiments/homepage-hero/rank", json={"event_id": "before"},
                       headers=bearer(made["key"])).status_code == 200
    assert client.post("/v1/events/before/rewards", json={"type": "click"},
                       headers=bearer(made["key"])).status_code == 202
    revoked = client.delete(f"/v1/keys/{made['key_id']}", headers=team.auth())
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    # The key's first rank put it in this process's key cache; the refusal comes from the
    # write's guard, and nothing is written.
    again = client.post("/v1/experiments/homepage-hero/rank", json={"event_id": "after"},
                        headers=bearer(made["key"]))
    assert again.status_code == 401
    assert again.headers["WWW-Authenticate"] == "Bearer"
    rewarded = client.post("/v1/events/before/rewards", json={"type": "click"},
                           headers=bearer(made["key"]))
    assert rewarded.status_code == 401
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Decision)
                              .where(Decision.event_id == "after")) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(RewardEvent)) == 1
    assert client.delete(f"/v1/keys/{made['key_id']}", headers=team.auth()).status_code == 200


def test_rotate_gives_a_new_key_with_the_same_settings_and_revokes_the_old(client, team):
    register(client, team)
    old = client.post("/v1/keys", json={
        "scope": "client", "name": "mobile", "default_experiment": "homepage-hero",
        "rate_limits": {"rank": {"rate": 50, "burst": 60}}}, headers=team.auth()).json
    rotated = client.post(f"/v1/keys/{old['key_id']}/rotate", headers=team.auth())
    assert rotated.status_code == 201, rotated.json
    new = rotated.json
    assert new["replaces"] == old["key_id"] and new["key_id"] != old["key_id"]
    for field in ("scope", "name", "default_experiment", "rate_limits"):
        assert new[field] == old[field]
    assert client.post("/v1/experiments/homepage-hero/rank", json={},
                       headers=bearer(old["key"])).status_code == 401
    assert client.post("/v1/experiments/homepage-hero/rank", json={},
                       headers=bearer(new["key"])).status_code == 200
    again = client.post(f"/v1/keys/{old['key_id']}/rotate", headers=team.auth())
    assert again.status_code == 409


def test_the_last_admin_key_cannot_be_revoked_over_the_api(client, team):
    admin_id = team.admin.split("_")[1]
    refused = client.delete(f"/v1/keys/{admin_id}", headers=team.auth())
    assert refused.status_code == 409
    other = client.post("/v1/keys", json={"scope": "admin"}, headers=team.auth()).json
    assert client.delete(f"/v1/keys/{admin_id}", headers=team.auth()).status_code == 200
    assert client.get("/v1/keys", headers=team.auth()).status_code == 401
    assert client.get("/v1/keys", headers=bearer(other["key"])).status_code == 200


def test_cli_create_list_rotate_revoke(app, runner, client, team):
    register(client, team)
    created = runner.invoke(args=["keys", "create", "--team", "team-a", "--scope", "client",
                                  "--name", "cli-key", "--experiment", "homepage-hero",
                                  "--rank-limit", "5/10"])
    assert created.exit_code == 0, created.output
    plain = created.stdout.strip().splitlines()[-1]
    key_id = plain.split("_")[1]
    listed = runner.invoke(args=["keys", "list", "--team", "team-a", "--json"])
    assert key_id in listed.stdout and plain.split("_", 2)[2] not in listed.stdout
    rotated = runner.invoke(args=["keys", "rotate", "--team", "team-a", key_id])
    assert rotated.exit_code == 0, rotated.output
    new_plain = rotated.stdout.strip().splitlines()[0]
    assert client.get("/v1/experiments/homepage-hero/decisions",
                      headers=bearer(plain)).status_code == 401
    new_id = new_plain.split("_")[1]
    revoked = runner.invoke(args=["keys", "revoke", "--team", "team-a", new_id])
    assert revoked.exit_code == 0
    actions = [e["action"] for e in client.get("/v1/audit", headers=team.auth()).json["entries"]]
    assert actions[-3:] == ["key.create", "key.rotate", "key.revoke"]


CLI_ERRORS = [
    (["keys", "create", "--team", "team-a", "--scope", "client", "--experiment", "nope"],
     "no experiment 'nope'"),
    (["keys", "revoke", "--team", "no-such-team", "abc"], "no team"),
    (["keys", "rotate", "--team", "team-a", "abc"], "no key 'abc'"),
    (["keys", "create", "--team", "team-a", "--scope", "client", "--rank-limit", "fast"],
     "RATE"),
]


def test_cli_errors_are_one_line_and_change_nothing(app, runner, team):
    for args, message in CLI_ERRORS:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 3


@pytest.fixture
def limited(database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "RATE_LIMIT_RANK": "1/3", "RATE_LIMIT_REWARD": "0"})
    yield app
    db_dispose(app)


def test_rank_rate_limit_answers_429_with_retry_after(limited):
    client, team = limited.test_client(), make_team(limited, "team-a")
    register(client, team)
    statuses = [client.post("/v1/experiments/homepage-hero/rank", json={},
                            headers=team.auth("client")) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    limited_response = statuses[-1]
    assert limited_response.json["error"]["code"] == "rate_limited"
    assert int(limited_response.headers["Retry-After"]) >= 1
    assert limited_response.json["error"]["details"][0]["limit"] == "rank"
    event = statuses[0].json["event_id"]
    # Rewards have their own (here: no) limit; another key has its own bucket.
    for _ in range(5):
        assert client.post(f"/v1/events/{event}/rewards", json={"type": "click"},
                           headers=team.auth("client")).status_code == 202
    assert client.post("/v1/experiments/homepage-hero/rank", json={},
                       headers=team.auth("admin")).status_code == 200


def test_per_key_limits_override_the_service_default(limited):
    client, team = limited.test_client(), make_team(limited, "team-a")
    register(client, team)
    fast = client.post("/v1/keys", json={"scope": "client", "rate_limits": {
        "rank": {"rate": 1000, "burst": 10}}}, headers=team.auth()).json["key"]
    codes = [client.post("/v1/experiments/homepage-hero/rank", json={},
                         headers=bearer(fast)).status_code for _ in range(10)]
    assert codes == [200] * 10


def test_personalizer_errors_for_size_and_limits(limited):
    client, team = limited.test_client(), make_team(limited, "team-a")
    register(client, team)
    headers = {"Ocp-Apim-Subscription-Key": team.client, "X-Tailor-Experiment": "homepage-hero",
               "Content-Type": "application/json"}
    huge = '{"contextFeatures": [{"x": "' + "a" * (1024 * 1024) + '"}], "actions": []}'
    too_large = client.post("/personalizer/v1.0/rank", data=huge, headers=headers)
    assert too_large.status_code == 413
    assert too_large.json["error"]["code"] == "PayloadSizeExceeded"  # Personalizer's code
    many = {"actions": [{"id": f"a{i}", "features": []} for i in range(1001)]}
    too_many = client.post("/personalizer/v1.0/rank", json=many, headers=headers)
    assert too_many.status_code == 400 and too_many.json["error"]["code"] == "InvalidRankRequest"
    assert "1000" in too_many.json["error"]["message"]
    codes = [client.post("/personalizer/v1.0/rank", json={}, headers=headers).status_code
             for _ in range(4)]
    assert codes[-1] == 429
    last = client.post("/personalizer/v1.0/rank", json={}, headers=headers)
    assert last.json["error"]["code"] == "TooManyRequests" and last.headers["Retry-After"]
