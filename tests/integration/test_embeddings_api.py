"""Declared `embedding` fields through the API: catalog actions and profiles embedded when
written, rank-time text embedded (and cached), the decision log as sent, the learner on the
same encoder; without the optional extra, a clear 400 saying how to install it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app import gunicorn_hooks
from bandits import embeddings
from experiments.models import CatalogEmbeddings, Experiment, Model, Profile
from experiments.stored_embeddings import warm_catalogs
from tests.conftest import session_of
from tests.integration.helpers import register
from tests.integration.test_learning_loop import _close_windows, _drain, _learner

TYPES = {"action.description": "embedding", "profile.bio": "embedding",
         "query": "embedding"}
ACTIONS = [{"id": "a1", "features": {"description": "Waterproof boots for mountain trails"}},
           {"id": "a2", "features": {"description": "A novel about a seaside town"}}]
needs_extra = pytest.mark.skipif(
    not embeddings.available(),
    reason="the embeddings extra is not installed (pip install -e '.[embeddings]')")


def _register(client, team):
    return register(client, team, key="semantic", actions=ACTIONS, feature_types=TYPES,
                    champion={"type": "uniform"}, arms={"bandit": 1.0},
                    profile={"namespace": "profile", "max_age_seconds": 60})


@needs_extra
def test_embedded_when_written_and_ranked_from_the_cache(app, client, team):
    app.config["PROFILE_CHECK_SECONDS"] = 0.0
    embeddings.embed.cache_clear()  # the other database's run embedded the same texts
    _register(client, team)
    cached = embeddings.embed.cache_info()
    # Registration embedded the catalog's descriptions: encoding them again is a cache hit.
    embeddings.embed("Waterproof boots for mountain trails")
    assert embeddings.embed.cache_info().hits == cached.hits + 1
    bio = "Spends every weekend climbing peaks in the Alps (written once)"
    put = client.put("/v1/units/u-1/profile", headers=team.auth("client"),
                     json={"features": {"bio": bio}})
    assert put.status_code == 200, put.json
    # As in another worker (started, so its catalogs are embedded): the bio is not cached.
    embeddings.embed.cache_clear()
    with session_of(app) as session:
        assert warm_catalogs(session) == 2
    misses = embeddings.embed.cache_info().misses
    for index in range(5):
        answer = client.post("/v1/experiments/semantic/rank", headers=team.auth("client"),
                             json={"context": {"user_id": "u-1", "query": "hiking gear"},
                                   "event_id": f"e{index}"})
        assert answer.status_code == 200, answer.json
    # Only the rank-time query was embedded (once); the bio's vector came with the profile.
    assert embeddings.embed.cache_info().misses == misses + 1
    logged = client.get("/v1/experiments/semantic/decisions",
                        headers=team.auth("analyst")).json["decisions"][0]
    assert logged["context"]["profile"] == {"bio": bio}  # the text, as stored
    assert logged["context"]["query"] == "hiking gear"
    _close_windows(app)
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id).where(
            Experiment.key == "semantic"))
    assert _drain(_learner(app, experiment_id)) == 5
    with session_of(app) as session:
        assert session.scalar(sa.select(Model.examples_learned)) == 5


@needs_extra
def test_embedding_fields_must_be_strings(client, team):
    _register(client, team)
    answer = client.post("/v1/experiments/semantic/rank", headers=team.auth("client"),
                         json={"context": {"query": [0.1, 0.2]}})
    assert answer.status_code == 400
    assert answer.json["error"]["details"][0]["field"] == "context.query"


def test_declaring_embedding_without_the_extra_is_a_400(client, team, monkeypatch):
    monkeypatch.setattr(embeddings, "available", lambda: False)
    answer = client.post("/v1/experiments", headers=team.auth("admin"), json={
        "key": "noextra", "actions": ACTIONS,
        "feature_types": {"action.blurb-no-extra": "embedding"}})
    assert answer.status_code == 400, answer.json
    detail = answer.json["error"]["details"][0]
    assert detail["field"] == "feature_types.action.blurb-no-extra"
    assert "pip install 'tailor[embeddings]'" in detail["message"]


@needs_extra
def test_a_worker_start_embeds_the_catalogs(app, client, team):
    _register(client, team)
    embeddings.embed.cache_clear()
    worker = SimpleNamespace(wsgi=app, log=logging.getLogger("test.worker"))
    gunicorn_hooks.post_worker_init(worker)  # what gunicorn calls before a worker serves
    assert embeddings.embed.cache_info().currsize == 2  # the two catalog descriptions
    hits = embeddings.embed.cache_info().hits
    answer = client.post("/v1/experiments/semantic/rank", headers=team.auth("client"),
                         json={"context": {"device": "mobile"}})
    assert answer.status_code == 200, answer.json
    assert embeddings.embed.cache_info().currsize == 2  # rank embedded nothing new
    assert embeddings.embed.cache_info().hits == hits  # the catalog's stored vectors


def _stored(app, unit: str) -> dict | None:
    with session_of(app) as session:
        return session.scalar(sa.select(Profile.embeddings).where(Profile.unit_id == unit))


@needs_extra
def test_profile_writes_store_the_vectors(app, client, team):
    _register(client, team)
    batch = client.post("/v1/profiles", headers=team.auth("client"), json={"profiles": [
        {"unit_id": "u-1", "features": {"bio": "Sails small boats", "tier": "gold"}},
        {"unit_id": "u-2", "features": {"tier": "silver"}}]})
    assert batch.status_code == 200, batch.json
    stored = _stored(app, "u-1")
    assert list(stored) == ["bio"]  # only the declared field, not `tier`
    assert stored["bio"] == list(embeddings.embed("Sails small boats"))
    assert _stored(app, "u-2") is None
    embeddings.embed.cache_clear()
    patched = client.patch("/v1/units/u-1/profile", headers=team.auth("client"),
                           json={"features": {"tier": "bronze"}})
    assert patched.status_code == 200, patched.json
    assert embeddings.embed.cache_info().misses == 0  # the unchanged bio's vector is kept
    assert _stored(app, "u-1") == stored
    client.patch("/v1/units/u-1/profile", headers=team.auth("client"),
                 json={"features": {"bio": "Reads poetry"}})
    assert _stored(app, "u-1")["bio"] == list(embeddings.embed("Reads poetry"))


@needs_extra
def test_a_profile_without_stored_vectors_is_still_ranked(app, client, team):
    """Written before any experiment declared the field: rank embeds the text."""
    app.config["PROFILE_CHECK_SECONDS"] = 0.0
    client.put("/v1/units/u-9/profile", headers=team.auth("client"),
               json={"features": {"bio": "Collects vintage maps"}})
    assert _stored(app, "u-9") is None
    _register(client, team)
    embeddings.embed.cache_clear()
    with session_of(app) as session:
        warm_catalogs(session)  # a worker's start
    misses = embeddings.embed.cache_info().misses
    answer = client.post("/v1/experiments/semantic/rank", headers=team.auth("client"),
                         json={"context": {"device": "tv"}, "unit_id": "u-9"})
    assert answer.status_code == 200, answer.json
    assert embeddings.embed.cache_info().misses == misses + 1  # the bio, at rank time


@needs_extra
def test_a_profile_write_needing_the_missing_extra_is_a_400(client, team, monkeypatch):
    _register(client, team)
    monkeypatch.setattr(embeddings, "available", lambda: False)
    for call in (lambda: client.put("/v1/units/u-1/profile", headers=team.auth("client"),
                                    json={"features": {"bio": "Sails"}}),
                 lambda: client.post("/v1/profiles", headers=team.auth("client"), json={
                     "profiles": [{"unit_id": "u-1", "features": {"bio": "Sails"}}]})):
        answer = call()
        assert answer.status_code == 400, answer.json
        detail = answer.json["error"]["details"][0]
        assert detail["field"] in ("features.bio", "profiles[0].features.bio")
        assert "pip install 'tailor[embeddings]'" in detail["message"]
    assert client.get("/v1/units/u-1/profile",
                      headers=team.auth("analyst")).status_code == 404  # nothing written
    # Fields no experiment declares `embedding` are stored as before.
    assert client.put("/v1/units/u-1/profile", headers=team.auth("client"),
                      json={"features": {"tier": "gold"}}).status_code == 200


@needs_extra
def test_catalog_vectors_are_stored_and_ranked_without_the_model(app, client, team):
    """Registration and a catalog change store the vectors; a worker that did not take
    the change (its embedding cache empty) ranks the new catalog without the model."""
    _register(client, team)
    with session_of(app) as session:
        stored = session.scalar(sa.select(CatalogEmbeddings.vectors))
    assert set(stored) == {a["features"]["description"] for a in ACTIONS}
    assert stored[ACTIONS[0]["features"]["description"]] == list(
        embeddings.embed(ACTIONS[0]["features"]["description"]))
    changed = [*ACTIONS, {"id": "a3", "features": {"description": "Trekking poles"}}]
    answer = client.patch("/v1/experiments/semantic", headers=team.auth("admin"),
                          json={"actions": changed})
    assert answer.status_code == 200, answer.json
    with session_of(app) as session:
        assert len(session.scalar(sa.select(CatalogEmbeddings.vectors))) == 3
    embeddings.embed.cache_clear()
    for index in range(3):
        answer = client.post("/v1/experiments/semantic/rank", headers=team.auth("client"),
                             json={"context": {"device": "tv"}, "event_id": f"c{index}"})
        assert answer.status_code == 200, answer.json
    assert embeddings.embed.cache_info().misses == 0  # every catalog vector was stored
    # A change of something else keeps the catalog's vectors (read back, written as text).
    renamed = client.patch("/v1/experiments/semantic", headers=team.auth("admin"),
                           json={"name": "Semantic, renamed"})
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["actions"][2]["features"]["description"] == "Trekking poles"
    with session_of(app) as session:
        assert session.scalar(sa.select(CatalogEmbeddings.vectors))["Trekking poles"] == list(
            embeddings.embed("Trekking poles"))
    assert embeddings.embed.cache_info().misses == 1  # the test's own call above
