"""The audit log records administrative acts, atomically with the act, per team, paged."""

from __future__ import annotations

import sqlalchemy as sa

from experiments.models import AuditLog
from tests.conftest import session_of
from tests.integration.helpers import experiment_body, register


def entries(client, team, query: str = "") -> list[dict]:
    response = client.get(f"/v1/audit{query}", headers=team.auth())
    assert response.status_code == 200, response.json
    return response.json["entries"]


def test_experiment_and_key_acts_are_recorded_with_actor_and_target(client, team):
    admin_id = team.admin.split("_")[1]
    register(client, team)
    client.patch("/v1/experiments/homepage-hero", json={"status": "paused"}, headers=team.auth())
    client.patch("/v1/experiments/homepage-hero", json={"status": "paused"}, headers=team.auth())
    made = client.post("/v1/keys", json={"scope": "client"}, headers=team.auth()).json
    rotated = client.post(f"/v1/keys/{made['key_id']}/rotate", headers=team.auth()).json
    client.delete(f"/v1/keys/{rotated['key_id']}", headers=team.auth())
    client.delete(f"/v1/keys/{rotated['key_id']}", headers=team.auth())  # already revoked
    log = entries(client, team)
    assert [(e["action"], e["target"]) for e in log] == [
        ("experiment.create", "homepage-hero"), ("experiment.update", "homepage-hero"),
        ("key.create", made["key_id"]), ("key.rotate", made["key_id"]),
        ("key.revoke", rotated["key_id"])]
    assert all(e["actor"] == f"key:{admin_id}" and e["at"].endswith("Z") for e in log)
    assert log[1]["details"] == {"fields": ["status"], "version": 2}
    assert log[3]["details"]["new_key_id"] == rotated["key_id"]
    assert all(made["key"] not in str(e) and rotated["key"] not in str(e) for e in log)


def test_failed_acts_leave_no_entry(app, client, team):
    register(client, team)
    assert client.post("/v1/experiments", json=experiment_body(),
                       headers=team.auth()).status_code == 409
    assert client.post("/v1/experiments", json={"key": "Bad Key"},
                       headers=team.auth()).status_code == 400
    assert client.patch("/v1/experiments/homepage-hero", json={"arms": {"x": 1}},
                        headers=team.auth()).status_code == 400
    assert client.post("/v1/keys", json={"scope": "nope"}, headers=team.auth()).status_code == 400
    assert [e["action"] for e in entries(client, team)] == ["experiment.create"]
    with session_of(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == 1


def test_paging_filtering_and_team_isolation(client, team, other_team):
    for i in range(5):
        register(client, team, key=f"exp-{i}")
    register(client, other_team, key="theirs")
    first = client.get("/v1/audit?limit=2", headers=team.auth()).json
    assert [e["target"] for e in first["entries"]] == ["exp-0", "exp-1"]
    second = client.get(f"/v1/audit?limit=2&after={first['next_after']}",
                        headers=team.auth()).json
    assert [e["target"] for e in second["entries"]] == ["exp-2", "exp-3"]
    last = client.get(f"/v1/audit?limit=2&after={second['next_after']}",
                      headers=team.auth()).json
    assert [e["target"] for e in last["entries"]] == ["exp-4"] and last["next_after"] is None
    assert entries(client, team, "?action=key.revoke") == []
    assert [e["target"] for e in entries(client, other_team)] == ["theirs"]
    for bad in ("?limit=0", "?limit=x", "?after=-1"):
        assert client.get(f"/v1/audit{bad}", headers=team.auth()).status_code == 400
    assert client.get("/v1/audit", headers=team.auth("analyst")).status_code == 403
