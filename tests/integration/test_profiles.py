"""Unit profiles on both databases: CRUD, TTL, batch, PII, erasure, audit, and rank's merge
(precedence, staleness, the decision row's profile version)."""

from __future__ import annotations

import pytest

from experiments import clock, pii
from tests.integration.helpers import register

KEY = "homepage-hero"
PROFILE = {"namespace": "profile", "max_age_seconds": 3600}


@pytest.fixture
def fresh(app):
    """Every profile write visible to the next rank at once (the 1 s poll is tested
    separately with two app instances)."""
    app.config["PROFILE_CHECK_SECONDS"] = 0.0
    return app


def put(client, team, unit, features, scope="client", **extra):
    return client.put(f"/v1/units/{unit}/profile", json={"features": features, **extra},
                      headers=team.auth(scope))


def decisions(client, team, key=KEY):
    return client.get(f"/v1/experiments/{key}/decisions",
                      headers=team.auth("analyst")).json["decisions"]


def test_put_get_patch_delete(client, team):
    first = put(client, team, "u-1", {"segment": "pro", "orders_90d": 7})
    assert first.status_code == 200, first.json
    assert first.json["version"] == 1 and first.json["unit_id"] == "u-1"
    assert put(client, team, "u-1", {"segment": "new"}).json["version"] == 2
    patched = client.patch("/v1/units/u-1/profile", headers=team.auth("client"),
                           json={"features": {"bio": "likes trail running", "segment": None}})
    assert patched.json["version"] == 3
    got = client.get("/v1/units/u-1/profile", headers=team.auth("analyst"))
    assert got.status_code == 200
    assert got.json["features"] == {"bio": "likes trail running"}
    assert got.json["version"] == 3 and got.json["expires_at"] is None
    assert client.get("/v1/units/u-1/profile", headers=team.auth("client")).status_code == 403
    assert client.delete("/v1/units/u-1/profile",
                         headers=team.auth("client")).status_code == 403
    assert client.delete("/v1/units/u-1/profile",
                         headers=team.auth("admin")).json["deleted"] is True
    assert client.get("/v1/units/u-1/profile",
                      headers=team.auth("analyst")).status_code == 404
    assert put(client, team, "u-1", {"a": 1}).json["version"] == 1  # a new profile


def test_profiles_are_per_team(client, team, other_team):
    put(client, team, "u-1", {"segment": "pro"})
    assert client.get("/v1/units/u-1/profile",
                      headers=other_team.auth("analyst")).status_code == 404
    assert put(client, other_team, "u-1", {"segment": "x"}).json["version"] == 1


def test_reads_and_deletes_are_audited_by_unit_hash(client, team):
    put(client, team, "u-9", {"segment": "pro"})
    client.get("/v1/units/u-9/profile", headers=team.auth("analyst"))
    client.delete("/v1/units/u-9/profile", headers=team.auth("admin"))
    entries = client.get("/v1/audit", headers=team.auth("admin")).json["entries"]
    acts = {e["action"]: e for e in entries}
    assert acts["profile.read"]["details"] == {"version": 1}
    assert acts["profile.read"]["target"].startswith(pii.HASH_PREFIX)
    assert acts["profile.read"]["target"] == acts["profile.delete"]["target"]
    assert all("u-9" not in (e["target"] or "") for e in entries)


@pytest.mark.parametrize("features, field", [
    ({"user": {"nested": 1}}, "features.user"),
    ({"x": [1, "a"]}, "features.x[1]"),
    ({"v": [0.1] * 1025}, "features.v"),
    ({"t": "w" * 10_001}, "features.t"),
])
def test_bad_features_are_refused_naming_the_path(client, team, features, field):
    response = put(client, team, "u-1", features)
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == field
    assert client.get("/v1/units/u-1/profile", headers=team.auth("analyst")).status_code == 404


def test_unknown_body_field_and_bad_ttl(client, team):
    response = client.put("/v1/units/u-1/profile", headers=team.auth("client"),
                          json={"features": {}, "ttl": 5})
    assert response.status_code == 400 and "ttl" in response.json["error"]["message"]
    assert put(client, team, "u-1", {}, ttl_seconds=-1).status_code == 400


def test_ttl_expires_the_profile(client, team, monkeypatch):
    assert put(client, team, "u-1", {"segment": "pro"}, ttl_seconds=60).status_code == 200
    got = client.get("/v1/units/u-1/profile", headers=team.auth("analyst")).json
    assert got["expires_at"] is not None
    later = clock.now() + 61
    monkeypatch.setattr(clock, "now", lambda: later)
    assert client.get("/v1/units/u-1/profile", headers=team.auth("analyst")).status_code == 404


def test_expired_profiles_are_purged(app, client, team, other_team, runner, monkeypatch):
    """The learner's maintenance (and `tailor retention`) deletes profiles past their TTL,
    per team, audited; profiles without a TTL or not yet expired stay."""
    import sqlalchemy as sa

    from app.cli_retention import maintenance
    from experiments.models import AuditLog, Profile
    from tests.conftest import session_of

    put(client, team, "u-1", {"a": 1}, ttl_seconds=30)
    put(client, team, "u-2", {"a": 2})
    put(client, team, "u-3", {"a": 3}, ttl_seconds=3600)
    put(client, other_team, "u-1", {"a": 4}, ttl_seconds=30)
    later = clock.now() + 31
    monkeypatch.setattr(clock, "now", lambda: later)
    maintenance(app)()  # what the learner runs periodically
    with session_of(app) as session:
        left = session.execute(sa.select(Profile.team_id, Profile.unit_id)
                               .order_by(Profile.team_id, Profile.unit_id)).all()
        audited = session.execute(sa.select(AuditLog.team_id, AuditLog.details).where(
            AuditLog.action == "profiles.expired").order_by(AuditLog.team_id)).all()
    assert left == [(team.team_id, "u-2"), (team.team_id, "u-3")]
    assert audited == [(team.team_id, {"profiles": 1}), (other_team.team_id, {"profiles": 1})]
    put(client, team, "u-4", {"a": 5}, ttl_seconds=1)
    monkeypatch.setattr(clock, "now", lambda: later + 2)
    result = runner.invoke(args=["retention"])
    assert result.exit_code == 0 and "1 expired profiles deleted" in result.output
    assert client.get("/v1/units/u-2/profile", headers=team.auth("analyst")).status_code == 200


def test_personal_data_is_hashed_in_profiles(client, team):
    response = put(client, team, "u-1", {"email": "a@b.example", "note": "x@y.example",
                                         "segment": "pro"})
    assert response.json["warnings"][0]["field"] == "features.note"
    stored = client.get("/v1/units/u-1/profile", headers=team.auth("analyst")).json
    assert stored["features"]["email"] == pii.keyed_hash(team_salt(client, team), "a@b.example")
    assert stored["features"]["note"].startswith(pii.HASH_PREFIX)
    assert stored["features"]["segment"] == "pro"


def team_salt(client, team) -> str:
    from app.db import EXTENSION
    from experiments.models import Team

    with client.application.extensions[EXTENSION]() as session:
        return session.get(Team, team.team_id).pii_salt


def test_batch_write(client, team):
    body = {"profiles": [{"unit_id": f"u-{i}", "features": {"segment": f"s{i % 3}"}}
                         for i in range(50)]}
    response = client.post("/v1/profiles", json=body, headers=team.auth("client"))
    assert response.status_code == 200, response.json
    assert [p["version"] for p in response.json["profiles"]] == [1] * 50
    again = client.post("/v1/profiles", json=body, headers=team.auth("client")).json
    assert {p["version"] for p in again["profiles"]} == {2}
    got = client.get("/v1/units/u-7/profile", headers=team.auth("analyst")).json
    assert got["features"] == {"segment": "s1"}


def test_batch_refuses_duplicates_and_oversize(client, team):
    duplicate = {"profiles": [{"unit_id": "u-1", "features": {}},
                              {"unit_id": "u-1", "features": {}}]}
    response = client.post("/v1/profiles", json=duplicate, headers=team.auth("client"))
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == "profiles[1].unit_id"
    big = {"profiles": [{"unit_id": f"u-{i}", "features": {}} for i in range(1001)]}
    assert client.post("/v1/profiles", json=big, headers=team.auth("client")).status_code == 400


# --- rank -----------------------------------------------------------------------------

def test_rank_merges_the_profile_request_wins(fresh, client, team):
    register(client, team, profile=PROFILE)
    put(client, team, "u-1", {"segment": "pro", "tier": "gold"})
    ranked = client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"), json={
        "context": {"user_id": "u-1", "profile": {"tier": "silver"}}})
    assert ranked.status_code == 200, ranked.json
    [decision] = decisions(client, team)
    assert decision["context"]["profile"] == {"segment": "pro", "tier": "silver"}
    assert decision["profile_version"] == 1 and decision["profile_status"] == "used"


def test_personalizer_rank_merges_the_profile_too(fresh, client, team):
    """A Personalizer rank gets the unit's profile as a v1 rank does (one RankService)."""
    register(client, team, profile=PROFILE, reward={"events": {"reward": "value"}},
             learner={"params": {"reward_range": [0, 1]}})
    put(client, team, "u-1", {"segment": "pro", "tier": "gold"})
    headers = {"Ocp-Apim-Subscription-Key": team.client, "X-Tailor-Experiment": KEY}
    ranked = client.post("/personalizer/v1.0/rank", headers=headers, json={
        "contextFeatures": [{"user_id": "u-1"}, {"profile": {"tier": "silver"}}],
        "actions": [{"id": "a", "features": [{"x": 1}]}, {"id": "b", "features": [{"x": 2}]}]})
    assert ranked.status_code == 201, ranked.json
    [decision] = decisions(client, team)
    assert decision["context"]["profile"] == {"segment": "pro", "tier": "silver"}
    assert decision["profile_version"] == 1 and decision["profile_status"] == "used"


def test_rank_records_missing_stale_and_expired(fresh, client, team, monkeypatch):
    register(client, team, profile={"namespace": "p", "max_age_seconds": 100})
    client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                json={"context": {"user_id": "nobody"}})
    put(client, team, "u-1", {"segment": "pro"})
    put(client, team, "u-2", {"segment": "pro"}, ttl_seconds=50)
    later = clock.now() + 60
    monkeypatch.setattr(clock, "now", lambda: later)
    for unit in ("u-1", "u-2"):
        client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                    json={"context": {"user_id": unit}})
    monkeypatch.setattr(clock, "now", lambda: later + 50)
    client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                json={"context": {"user_id": "u-1"}})
    found = [(d["unit_id"], d["profile_status"], d["profile_version"], "p" in d["context"])
             for d in decisions(client, team)]
    assert found == [("nobody", "missing", None, False), ("u-1", "used", 1, True),
                     ("u-2", "expired", 1, False), ("u-1", "stale", 1, False)]


def test_experiment_pii_rules_apply_to_the_profile(fresh, client, team):
    register(client, team, profile=PROFILE, pii_fields=["profile.city"], pii_mode="reject")
    put(client, team, "u-1", {"city": "Lyon", "segment": "pro"})
    ranked = client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                         json={"context": {"user_id": "u-1"}})
    assert ranked.status_code == 200, ranked.json  # stored data is hashed, never refused
    [decision] = decisions(client, team)
    assert decision["context"]["profile"]["city"].startswith(pii.HASH_PREFIX)
    assert decision["context"]["profile"]["segment"] == "pro"


def test_undeclared_vector_in_profile_is_left_out_with_a_warning(fresh, client, team):
    register(client, team, profile=PROFILE)
    put(client, team, "u-1", {"emb": [0.1, 0.2], "segment": "pro"})
    ranked = client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                         json={"context": {"user_id": "u-1"}})
    assert ranked.status_code == 200
    assert ranked.json["warnings"][0]["field"] == "profile.emb"
    assert decisions(client, team)[0]["context"]["profile"] == {"segment": "pro"}


def test_erasure_removes_the_profile(fresh, client, team):
    register(client, team, profile=PROFILE)
    put(client, team, "u-1", {"segment": "pro"})
    put(client, team, "u-only-profile", {"segment": "pro"})
    client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                json={"context": {"user_id": "u-1"}})
    erased = client.delete("/v1/units/u-1", headers=team.auth("admin"))
    assert erased.status_code == 200 and erased.json["profiles"] == 1
    assert erased.json["decisions"] == 1
    assert client.get("/v1/units/u-1/profile", headers=team.auth("analyst")).status_code == 404
    only = client.delete("/v1/units/u-only-profile", headers=team.auth("admin"))
    assert only.status_code == 200 and only.json["profiles"] == 1
    client.post(f"/v1/experiments/{KEY}/rank", headers=team.auth("client"),
                json={"context": {"user_id": "u-1"}})
    assert decisions(client, team)[-1]["profile_status"] == "missing"


def test_a_write_reaches_another_worker_within_a_second(app, client, team, database_url):
    """Two app instances on one database (two workers): B caches u-1's profile, A writes
    a new version, and B's next rank after at most 1 s uses it."""
    import time

    from app import create_app
    from app.db import dispose

    other = create_app({"DATABASE_URL": database_url, "TESTING": True,
                        "MODEL_CHECK_SECONDS": 0.0, "PROFILE_CHECK_SECONDS": 1.0})
    try:
        worker_b = other.test_client()
        register(client, team, profile=PROFILE)
        put(client, team, "u-1", {"segment": "pro"})
        body = {"context": {"user_id": "u-1"}}
        worker_b.post(f"/v1/experiments/{KEY}/rank", json=body, headers=team.auth("client"))
        written_at = time.monotonic()
        assert put(client, team, "u-1", {"segment": "new"}).json["version"] == 2
        seen = []
        while time.monotonic() - written_at < 1.5:
            answer = worker_b.post(f"/v1/experiments/{KEY}/rank", json=body,
                                   headers=team.auth("client"))
            assert answer.status_code == 200
            seen.append((time.monotonic() - written_at,
                         decisions(client, team)[-1]["profile_version"]))
            time.sleep(0.05)
        assert all(version == 2 for at, version in seen if at > 1.0)
        assert seen[-1][1] == 2
    finally:
        dispose(other)
