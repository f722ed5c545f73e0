"""Every endpoint in the OpenAPI table refuses other teams, wrong scopes and missing keys.

The table is built from `app.openapi.ENDPOINTS`, so an endpoint added later is covered
without editing this file. One world per backend (module scope): team A owns an
experiment, decisions, rewards and keys; team B tries to reach them. A request of B on A's
resource must answer exactly as on a resource that does not exist (404 where the path
names one), and must leave A's data unchanged.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app import create_app
from app.api import bodies
from app.db import dispose as db_dispose
from app.openapi import ENDPOINTS
from app.personalizer import bodies as pbodies
from experiments import experiment_commands, key_commands, keys, profile_commands
from experiments.models import (
    ApiKey,
    AuditLog,
    Decision,
    Experiment,
    Model,
    Profile,
    RewardEvent,
)
from tests.conftest import BACKENDS, TeamKeys, _truncate, make_team, session_of

A_EXPERIMENT = "alpha-secret-shop"
A_EVENT = "alpha-event-1"
A_UNIT = "alpha-unit-1"
MISSING = {"key": "no-such-experiment", "event_id": "no-such-event",
           "key_id": "0000000000000000", "unit_id": "no-such-unit"}
SCOPED = [e for e in ENDPOINTS if e[2] is not None]
RESOURCE_PARAMS = {"key", "event_id", "key_id", "unit_id"}


@dataclass
class World:
    app: object
    client: object
    a: TeamKeys
    b: TeamKeys
    a_key_id: str

    def values(self) -> dict[str, str]:
        return {"key": A_EXPERIMENT, "event_id": A_EVENT, "key_id": self.a_key_id,
                "unit_id": A_UNIT}


def _experiment(key: str) -> dict:
    return {"key": key, "actions": [{"id": "x", "features": {"c": "1"}},
                                    {"id": "y", "features": {"c": "2"}}],
            "reward": {"events": {"click": 1.0, "reward": "value"}}, "unit_field": "user_id",
            "learner": {"exploration": "epsilon", "params": {"reward_range": [0, 1]}}}


def _seed(client, team: TeamKeys, key: str, event: str, unit: str) -> None:
    admin, user = team.auth("admin"), team.auth("client")
    assert client.post("/v1/experiments", json=_experiment(key), headers=admin).status_code == 201
    for suffix, defer in (("", False), ("-deferred", True)):
        r = client.post(f"/v1/experiments/{key}/rank", headers=user, json={
            "context": {"user_id": unit}, "event_id": event + suffix, "defer_activation": defer})
        assert r.status_code == 200, r.json
    assert client.post(f"/v1/events/{event}/rewards", json={"type": "click"},
                       headers=user).status_code == 202
    assert client.put(f"/v1/units/{unit}/profile", json={"features": {"secret": key}},
                      headers=user).status_code == 200


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("isolation") / "tailor.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    app = create_app({"DATABASE_URL": url, "TESTING": True, "MODEL_CHECK_SECONDS": 0.0})
    client = app.test_client()
    a, b = make_team(app, "team-a"), make_team(app, "team-b")
    _seed(client, a, A_EXPERIMENT, A_EVENT, A_UNIT)
    _seed(client, b, "beta-shop", "beta-event-1", "beta-unit-1")
    with session_of(app) as session:
        team = keys.get_or_create_team(session, "team-a")
        _, row = keys.create_key(session, team, "client", name="victim")
        session.commit()
        a_key_id = row.key_id
    yield World(app, client, a, b, a_key_id)
    db_dispose(app)


def state_of(app, team_id: int) -> dict:
    """Team A's data that no request of another team may change."""
    with session_of(app) as session:
        experiments = sa.select(Experiment.id).where(Experiment.team_id == team_id)
        return {
            "experiments": session.execute(sa.select(
                Experiment.key, Experiment.version, Experiment.status)
                .where(Experiment.team_id == team_id).order_by(Experiment.key)).all(),
            "decisions": session.execute(sa.select(
                Decision.event_id, Decision.unit_id, Decision.reward, Decision.reward_count,
                Decision.activated_at).where(Decision.experiment_id.in_(experiments))
                .order_by(Decision.id)).all(),
            "rewards": session.scalar(sa.select(sa.func.count()).select_from(RewardEvent)
                                      .where(RewardEvent.experiment_id.in_(experiments))),
            "models": session.scalar(sa.select(sa.func.count()).select_from(Model)
                                     .where(Model.experiment_id.in_(experiments))),
            "keys": session.execute(sa.select(ApiKey.key_id, ApiKey.revoked_at)
                                    .where(ApiKey.team_id == team_id)
                                    .order_by(ApiKey.id)).all(),
            "audit": session.scalar(sa.select(sa.func.count()).select_from(AuditLog)
                                    .where(AuditLog.team_id == team_id)),
            "profiles": session.execute(sa.select(Profile.unit_id, Profile.version)
                                        .where(Profile.team_id == team_id)
                                        .order_by(Profile.unit_id)).all(),
        }


def _path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)


SAMPLE_BODIES = {  # by the endpoint's request type (app.openapi.ENDPOINTS)
    experiment_commands.CreateExperiment: lambda: _experiment(f"b-made-{uuid.uuid4().hex[:8]}"),
    experiment_commands.PatchExperiment: lambda: {"name": "renamed by b"},
    bodies.RankRequest: lambda: {"context": {"user_id": "u-b"}},
    bodies.RewardBatch: lambda: {"rewards": [{"event_id": A_EVENT, "type": "click"}]},
    bodies.Reward: lambda: {"type": "click"},
    key_commands.CreateKey: lambda: {"scope": "analyst"},
    pbodies.PersonalizerRankRequest: lambda: {
        "contextFeatures": [{"a": "b"}], "actions": [{"id": "x", "features": [{"c": "1"}]}]},
    pbodies.PersonalizerReward: lambda: {"value": 1.0},
    pbodies.PersonalizerMultiSlotRankRequest: lambda: {
        "actions": [{"id": "x", "features": []}, {"id": "y", "features": []}],
        "slots": [{"id": "s1", "baselineAction": "x"}]},
    pbodies.PersonalizerMultiSlotReward: lambda: {"reward": [{"slotId": "s1", "value": 1.0}]},
    profile_commands.PutProfile: lambda: {"features": {"segment": "b"}},
    profile_commands.PatchProfile: lambda: {"features": {"segment": "b"}},
    profile_commands.PutProfiles: lambda: {"profiles": [{"unit_id": "u-b",
                                                         "features": {"x": "b"}}]},
}
# Unit profiles are named by unit id within the caller's team: B's call on A's unit id
# reaches B's own profile of that id (created by B's PUT), never A's; a write is answered
# exactly as for an id no team uses.
OWN_TEAM_UPSERTS = {("put", "/v1/units/{unit_id}/profile"),
                    ("patch", "/v1/units/{unit_id}/profile")}


def call(client, endpoint, values: dict[str, str], headers: dict[str, str]):
    method, template, _scope, _summary, schema, _status = endpoint
    body = SAMPLE_BODIES.get(schema, dict)() if schema is not None else {}
    kwargs = {"json": body} if method in ("post", "put", "patch") else {}
    # Personalizer endpoints find the experiment by this header; others ignore it.
    headers = {**headers, "X-Tailor-Experiment": values.get("key", A_EXPERIMENT)}
    return getattr(client, method)(_path(template, values), headers=headers, **kwargs)


def _id(endpoint) -> str:
    return f"{endpoint[0].upper()} {endpoint[1]}"


@pytest.mark.parametrize("endpoint", SCOPED, ids=_id)
def test_no_key_or_a_bad_key_is_401(world, endpoint):
    for headers in ({}, {"Authorization": "Bearer tlr_0123_not-a-key"},
                    {"Authorization": "Bearer garbage"},
                    {"Ocp-Apim-Subscription-Key": "tlr_x_y"}):
        response = call(world.client, endpoint, world.values(), headers)
        assert response.status_code == 401, (headers, response.json)
        assert response.json["error"]["message"]


@pytest.mark.parametrize("endpoint", SCOPED, ids=_id)
def test_wrong_scope_is_403(world, endpoint):
    required = endpoint[2]
    before = state_of(world.app, world.a.team_id)
    wrong = [s for s in keys.SCOPES if s != required and s != "admin"]
    for scope in wrong:
        response = call(world.client, endpoint, world.values(), world.a.auth(scope))
        assert response.status_code == 403, (scope, response.json)
    assert state_of(world.app, world.a.team_id) == before


@pytest.mark.parametrize("endpoint", SCOPED, ids=_id)
def test_other_team_cannot_see_or_change(world, endpoint):
    before = state_of(world.app, world.a.team_id)
    theirs = call(world.client, endpoint, world.values(), world.b.auth("admin"))
    after = state_of(world.app, world.a.team_id)
    assert after == before, f"{_id(endpoint)} by team B changed team A's data"
    names = set(re.findall(r"\{(\w+)\}", endpoint[1]))
    if not names & RESOURCE_PARAMS and not endpoint[1].startswith("/personalizer/"):
        # A collection of B's own: nothing of A's may appear in it.
        for secret in world.values().values():
            assert secret not in theirs.get_data(as_text=True)
        return
    if endpoint[1].endswith("/profile"):
        assert A_EXPERIMENT not in theirs.get_data(as_text=True)  # A's profile's secret
    missing = call(world.client, endpoint, MISSING, world.b.auth("admin"))
    if endpoint[1].endswith("/profile") and endpoint[0] in ("get", "delete"):
        return  # B's own profile of that id may exist (B's PUT above): checked above
    if endpoint[:2] in OWN_TEAM_UPSERTS:
        assert theirs.status_code == missing.status_code == 200
        assert {**theirs.json, "updated_at": 0} == {**missing.json, "updated_at": 0,
                                                    "unit_id": A_UNIT}
        return
    if endpoint[1] == "/v1/units/{unit_id}":  # erasure is idempotent: nothing of B's to erase
        assert theirs.status_code == missing.status_code == 200, (theirs.json, missing.json)
        assert {**theirs.json, "unit": None} == {**missing.json, "unit": None}
        assert theirs.json["decisions"] == theirs.json["rewards"] == 0
        return
    assert theirs.status_code == missing.status_code == 404, (theirs.json, missing.json)
    # Indistinguishable from a resource that does not exist (up to the id B sent).
    text = theirs.get_data(as_text=True)
    for name, value in world.values().items():
        text = text.replace(value, MISSING[name])
    assert text == missing.get_data(as_text=True)
