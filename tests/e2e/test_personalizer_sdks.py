"""Microsoft's own Personalizer clients, unmodified except endpoint and key, against gunicorn
on SQLite and PostgreSQL: every data-plane method of `PersonalizerClient` and the service
configuration and policy methods of `PersonalizerAdministrationClient`
(azure-ai-personalizer 1.0.0b1, `/personalizer?api-version=2022-09-01-preview`), and every
method of the older azure-cognitiveservices-personalizer 0.1.1 (`/personalizer/v1.0`).
The answers are checked for meaning: probabilities sum to 1, excluded actions at 0,
distinct slot actions, configuration round trips, rewards landing on their decisions."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.cognitiveservices.personalizer import PersonalizerClient as OldPersonalizerClient
from azure.cognitiveservices.personalizer.models import (
    ErrorResponseException,
    RankableAction,
    RankRequest,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from msrest.authentication import CognitiveServicesCredentials
from sqlalchemy.orm import Session

from app.db import make_engine
from experiments import keys, registry
from tests.conftest import _truncate
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

EXPERIMENT = "news"
NEWS = [{"id": "NewsArticle", "features": [{"type": "News"}]},
        {"id": "SportsArticle", "features": [{"type": "Sports"}]},
        {"id": "EntertainmentArticle", "features": [{"type": "Entertainment"}]}]


@dataclass
class Service:
    url: str
    database_url: str
    client_key: str
    admin_key: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, tmp_path_factory, sqlite_template) -> Iterator[Service]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("personalizer") / "tailor.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        _truncate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        team = keys.get_or_create_team(session, "shop")
        registry.create(session, team.id, {"key": EXPERIMENT, "reward": {
            "events": {"reward": "value"}, "window_seconds": 600},
            "learner": {"exploration": "epsilon",
                        "params": {"epsilon": 0.2, "reward_range": [0, 1]}}}, "test")
        admin, _ = keys.create_key(session, team, "admin", default_experiment=EXPERIMENT)
        client_key, _ = keys.create_key(session, team, "client",
                                        default_experiment=EXPERIMENT)
        session.commit()
    engine.dispose()
    server = Server(url, workers=1).start()
    yield Service(server.url, url, client_key, admin)
    server.stop()


def rows(database_url: str, sql: str, **params: str) -> list:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def check_ranking(response: dict, actions: list[dict], excluded: list[str]) -> None:
    ranking = response["ranking"]
    assert sorted(r["id"] for r in ranking) == sorted(a["id"] for a in actions)
    assert math.isclose(sum(r["probability"] for r in ranking), 1.0, abs_tol=1e-9)
    assert all(r["probability"] == 0 for r in ranking if r["id"] in excluded)
    assert response["rewardActionId"] not in excluded


def test_readme_samples_run_as_written(service):
    """The two samples of the azure-ai-personalizer 1.0.0b1 README, only endpoint and key."""
    client = PersonalizerClient(service.url, AzureKeyCredential(service.client_key))
    actions = [
        {"id": "Video1", "features": [
            {"videoType": "documentary", "videoLength": 35, "director": "CarlSagan"},
            {"mostWatchedByAge": "50-55"}]},
        {"id": "Video2", "features": [
            {"videoType": "movie", "videoLength": 120, "director": "StevenSpielberg"},
            {"mostWatchedByAge": "40-45"}]}]
    context_features = [
        {"currentContext": {"day": "tuesday", "time": "night", "weather": "rainy"}},
        {"userContext": {"payingUser": True, "favoriteGenre": "documentary",
                         "hoursOnSite": 0.12, "lastWatchedType": "movie"}}]
    rank_response = client.rank({"actions": actions, "contextFeatures": context_features})
    check_ranking(rank_response, actions, [])
    client.reward(rank_response.get("eventId"), {"value": 1.0})

    slots = [{"id": "Main Article", "baselineAction": "NewsArticle",
              "positionFeatures": [{"Size": "Large", "Position": "Top Middle"}]},
             {"id": "Side Bar", "baselineAction": "SportsArticle",
              "positionFeatures": [{"Size": "Small", "Position": "Bottom Right"}]}]
    context_features = [
        {"user": {"profileType": "AnonymousUser", "latLong": "47.6,-122.1"}},
        {"environment": {"dayOfMonth": "28", "monthOfYear": "8", "weather": "Sunny"}},
        {"device": {"mobile": True, "windows": True}},
        {"recentActivity": {"itemsInCart": 3}}]
    rank_response = client.rank_multi_slot(
        {"slots": slots, "actions": NEWS, "contextFeatures": context_features})
    chosen = [s["rewardActionId"] for s in rank_response["slots"]]
    assert [s["id"] for s in rank_response["slots"]] == ["Main Article", "Side Bar"]
    assert len(set(chosen)) == 2 and set(chosen) <= {a["id"] for a in NEWS}
    client.reward_multi_slot(rank_response.get("eventId"),
                             {"reward": [{"slotId": "Main Article", "value": 1.0}]})
    stored = rows(service.database_url, "SELECT reward FROM decisions WHERE event_id = :e",
                  e=f"{rank_response['eventId']}\x1fMain Article")
    assert stored == [(1.0,)]


def test_every_data_plane_method(service):
    client = PersonalizerClient(service.url, AzureKeyCredential(service.client_key))
    ranked = client.rank({"contextFeatures": [{"timeOfDay": "Morning"}], "actions": NEWS,
                          "excludedActions": ["SportsArticle"], "eventId": "sdk-1",
                          "deferActivation": True})
    assert ranked["eventId"] == "sdk-1"
    check_ranking(ranked, NEWS, ["SportsArticle"])
    client.activate("sdk-1")
    client.reward("sdk-1", {"value": 0.5})
    multi = client.rank_multi_slot({
        "actions": NEWS, "eventId": "sdk-ms", "deferActivation": True, "slots": [
            {"id": "a", "baselineAction": "NewsArticle", "features": [{"size": "l"}]},
            {"id": "b", "baselineAction": "SportsArticle",
             "excludedActions": ["EntertainmentArticle"]},
            {"id": "c", "baselineAction": "EntertainmentArticle"}]})
    chosen = [s["rewardActionId"] for s in multi["slots"]]
    assert sorted(chosen) == sorted(a["id"] for a in NEWS) and chosen[1] != \
        "EntertainmentArticle"
    client.activate_multi_slot("sdk-ms")
    client.reward_multi_slot("sdk-ms", {"reward": [{"slotId": "a", "value": 1.0},
                                                   {"slotId": "c", "value": 0.25}]})
    # A reward and an activation that arrive before their decision: 204, joined later.
    client.reward("sdk-early", {"value": 0.75})
    client.activate("sdk-early")
    client.rank({"actions": NEWS, "eventId": "sdk-early", "deferActivation": True})
    got = dict(rows(service.database_url, "SELECT event_id, reward FROM decisions "
                    "WHERE event_id LIKE 'sdk-%' AND activated_at IS NOT NULL"))
    assert got == {"sdk-1": 0.5, "sdk-ms\x1fa": 1.0, "sdk-ms\x1fb": None,
                   "sdk-ms\x1fc": 0.25, "sdk-early": 0.75}
    with pytest.raises(HttpResponseError) as caught:
        client.rank({"actions": NEWS, "excludedActions": [a["id"] for a in NEWS]})
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidRankRequest"


def test_service_configuration_and_policy(service):
    admin = PersonalizerAdministrationClient(service.url,
                                             AzureKeyCredential(service.admin_key))
    config = admin.get_service_configuration()
    changed = {**config, "rewardWaitTime": "PT10M", "defaultReward": 0.0,
               "rewardAggregation": "average", "explorationPercentage": 0.1,
               "learningMode": "Online", "modelExportFrequency": "PT1M",
               "logRetentionDays": 90}
    updated = admin.update_service_configuration(changed)
    again = admin.get_service_configuration()
    for field in ("rewardWaitTime", "rewardAggregation", "explorationPercentage",
                  "modelExportFrequency", "logRetentionDays"):
        assert updated[field] == again[field] == changed[field], field
    policy = admin.update_policy({"name": "bag", "arguments":
                                  "--cb_explore_adf --bag 5 --epsilon 0.05 -q ::"})
    assert policy["name"] == "bag" and "--bag 5" in policy["arguments"]
    assert admin.get_policy() == policy
    default = admin.reset_policy()
    assert "--epsilon 0.2" in default["arguments"] and admin.get_policy() == default
    with pytest.raises(HttpResponseError) as caught:
        admin.update_policy({"name": "evil", "arguments": "--cb_explore_adf -f /tmp/m"})
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidPolicyConfiguration"
    assert admin.get_policy() == default


def test_older_client_every_method(service):
    client = OldPersonalizerClient(service.url,
                                   CognitiveServicesCredentials(service.client_key))
    actions = [RankableAction(id=a["id"], features=a["features"]) for a in NEWS]
    response = client.rank(RankRequest(actions=actions, context_features=[{"tod": "night"}],
                                       excluded_actions=["NewsArticle"], event_id="old-1",
                                       defer_activation=True))
    ranking = {r.id: r.probability for r in response.ranking}
    assert response.event_id == "old-1" and ranking["NewsArticle"] == 0
    assert math.isclose(sum(ranking.values()), 1.0, abs_tol=1e-9)
    assert response.reward_action_id != "NewsArticle"
    client.events.activate("old-1")
    client.events.reward("old-1", 1.0)
    assert rows(service.database_url,
                "SELECT reward FROM decisions WHERE event_id = 'old-1'") == [(1.0,)]
    with pytest.raises(ErrorResponseException) as caught:
        client.rank(RankRequest(actions=actions, excluded_actions=[a.id for a in actions]))
    assert caught.value.response.status_code == 400
    assert caught.value.error.error.code == "InvalidRankRequest"
