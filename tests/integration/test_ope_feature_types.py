"""OPE reads `feature_types` as rank did: replaying the model that decided on the logged
decisions gives back the logged pmfs for an experiment with text, vector (and, with the
extra, embedding) fields, through both report paths that replay served models (the
`model:<version>` candidate and the A/B-vs-OPE version schedule); the reward model and
the `vw:` replay encode the same fields."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from bandits import embeddings
from bandits.features import NO_TYPES, FeatureError, feature_types
from experiments.final_decisions import count, scope_of
from experiments.models import Decision, Experiment
from experiments.ope.featurize import HashingFeaturizer
from experiments.ope_report import candidates, crosscheck, qmodel
from experiments.ope_report.scope import chunks
from tests.conftest import session_of
from tests.integration.helpers import learn_closed, register

TYPES = {"user.bio": "text", "user.taste": "vector", "action.blurb": "text"}
ACTIONS = [{"id": f"a{i}", "features": {"blurb": f"{word} gear for the weekend"}}
           for i, word in enumerate(["mountain", "sea", "city"])]
BIOS = ["likes steep mountain trails", "sails every summer on the sea", "museums and cafes"]


def _context(i: int) -> dict:
    return {"user_id": f"u-{i}", "hour": i % 24,
            "user": {"bio": BIOS[i % 3], "taste": [0.5 * (i % 3), 1.0 - 0.25 * (i % 4), 0.0]}}


def _types() -> dict:
    if embeddings.available():
        return {**TYPES, "user.summary": "embedding"}
    return TYPES


def _rank_all(client, team, start: int, n: int) -> None:
    for i in range(start, start + n):
        context = _context(i)
        if embeddings.available():
            context["user"]["summary"] = BIOS[(i + 1) % 3]
        answer = client.post("/v1/experiments/homepage-hero/rank", headers=team.auth("client"),
                             json={"context": context, "event_id": f"e{i}"})
        assert answer.status_code == 200, answer.json
        chosen = int(answer.json["action_id"][1:])
        if chosen == i % 3:
            client.post("/v1/experiments/homepage-hero/rewards", headers=team.auth("client"),
                        json={"event_id": f"e{i}", "event": "click"})


@pytest.fixture
def served(app, client, team):
    """Decisions served by a learned model version (model_version > 0) of an experiment
    whose contexts and actions carry declared text and vector fields."""
    app.extensions["tailor.policies"].check_seconds = 0.0
    register(client, team, actions=ACTIONS, feature_types=_types(),
             learner={"exploration": "epsilon",
                      "params": {"epsilon": 0.2, "reward_range": [0, 1]}},
             champion={"type": "uniform"}, arms={"champion": 0.3, "bandit": 0.7})
    _rank_all(client, team, 0, 60)
    learn_closed(app)
    _rank_all(client, team, 60, 60)
    with session_of(app) as session:  # reports read closed reward windows
        session.execute(sa.update(Decision).values(closes_at=Decision.closes_at - 3600.0))
        session.commit()
        experiment = session.scalars(sa.select(Experiment)).one()
        session.expunge(experiment)
    return experiment


def test_the_deciding_model_reproduces_the_logged_pmfs(app, served):
    with session_of(app) as session:
        version = session.scalar(sa.select(sa.func.max(Decision.model_version)))
        assert version and version > 0
        scope = scope_of(session, served)
        source = candidates.resolve(session, served, f"model:{version}")
        schedule = crosscheck.schedule(session, served, scope)
        served_by = dict(session.execute(sa.select(
            Decision.event_id, Decision.model_version)).all())
        logged_chunks = list(chunks(session, scope))
        compared = 0
        for chunk in logged_chunks:
            bandit = np.array([arm == "bandit" for arm in chunk.arms])
            logged = np.array([[p or 0.0 for p in pmf] for pmf in chunk.logged_pmfs])
            by_version = schedule.pmfs(chunk)
            by_model = source.pmfs(chunk)
            versions = np.array([served_by[e] or 0 for e in chunk.event_ids])
            rows = np.flatnonzero(bandit)
            np.testing.assert_allclose(by_version[rows], logged[rows], atol=1e-6)
            latest = np.flatnonzero(bandit & (versions == version))
            np.testing.assert_allclose(by_model[latest], logged[latest], atol=1e-6)
            compared += latest.size
        assert compared > 10
        # The check can fail: without the declaration the vectors cannot even be encoded.
        source.types = NO_TYPES
        with pytest.raises(FeatureError):
            source.pmfs(logged_chunks[0])


def test_the_report_evaluates_text_and_vector_experiments(app, client, team, served):
    answer = client.get("/v1/experiments/homepage-hero/reports/ope",
                        headers=team.auth("analyst"),
                        query_string={"candidates": "model:latest,vw:epsilon,epsilon=0.1"})
    assert answer.status_code == 200, answer.json
    for entry in answer.json["candidates"].values():
        assert entry["estimators"]["snips"]["value"] is not None
    with session_of(app) as session:
        scope = scope_of(session, served)
        model = qmodel.fit(session, scope, count(session, scope), ignore=frozenset({"user_id"}),
                           types=feature_types(served.config["feature_types"]))
        assert model.train_rows == 120


def test_the_reward_model_reads_declared_fields_as_rank_does():
    types = feature_types({"user.bio": "text", "user.taste": "vector", "action.blurb": "text"})
    featurizer = HashingFeaturizer(n_bits=20, types=types)
    a = featurizer.encode_contexts([{"user": {"bio": "Sea, SEA and sun", "taste": [0, 2.5]}}])
    b = featurizer.encode_contexts([{"user": {"bio": "sun AND sea", "taste": [0.0, 2.5]}}])
    # The same words (case-folded, distinct) and the same non-zero dimension.
    assert sorted(a.hashes.tolist()) == sorted(b.hashes.tolist())
    assert sorted(a.values.tolist()) == [1.0, 1.0, 1.0, 2.5]
    with pytest.raises(ValueError, match="taste"):  # undeclared, a list of numbers
        HashingFeaturizer().encode_contexts([{"user": {"taste": [0.5]}}])
    actions = featurizer.encode_actions([("x", {"blurb": "trail gear"})])
    assert actions.features.n_rows == 1 and actions.features.hashes.shape == (2,)
    with pytest.raises(ValueError, match="bio"):
        featurizer.encode_contexts([{"user": {"bio": 3}}])
