"""The fairness report through the API, on both databases: numbers checked against a
recomputation (scipy for the chi-square), a counterfactual audit that sees a model use the
attribute and sees one ignore it, degenerate data and bad parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import stats

from bandits.learner import OnlineLearner
from experiments import clock
from experiments.config import bandit_arguments
from experiments.models import Experiment, Model
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, learn_closed, rank, register
from tests.integration.test_ab_report import _decision, _write, experiment_id

URL = "/v1/experiments/homepage-hero/reports/fairness"
PAIRS = [(a["id"], a["features"]) for a in ACTIONS]
# P(reward) per (arm, gender); the bandit favours women's reward and shows them hero-2.
RATE = {("champion", "f"): 0.2, ("champion", "m"): 0.2, ("bandit", "f"): 0.45,
        ("bandit", "m"): 0.1}


def _seed(app, units: int = 160, seed: int = 5) -> list[dict]:
    """Returning units (1-4 decisions each) of fixed gender; returns the rows written."""
    rng = np.random.default_rng(seed)
    exp_id, start = experiment_id(app, "homepage-hero"), clock.now() - 3000.0
    rows: list[dict] = []
    for u in range(units):
        arm, gender = ("champion", "bandit")[u % 2], "fm"[(u // 2) % 2]
        for _ in range(int(rng.integers(1, 5))):
            if arm == "champion":
                index = 0
            else:
                favoured = 1 if gender == "f" else 0
                index = favoured if rng.random() < 0.7 else 2
            reward = float(rng.random() < RATE[(arm, gender)])
            rows.append(_decision(exp_id, len(rows), arm, start + len(rows), unit_id=f"u{u}",
                                  context={"user": {"gender": gender}, "hour": 3},
                                  chosen_index=index, action_id=ACTIONS[index]["id"],
                                  reward=reward))
    _write(app, rows, [])
    return rows


def _get(client, team, **params):
    response = client.get(URL, query_string=params, headers=team.auth("analyst"))
    assert response.status_code == 200, response.json
    return response.json


def _value(body: dict, arm: str, value: str) -> dict:
    return next(r for r in body["arms"][arm]["values"] if r["value"] == value)


def test_reward_and_exposure_per_value_match_a_recomputation(app, client, team):
    register(client, team)
    rows = _seed(app)
    body = _get(client, team, attribute="user.gender")
    assert body["values"] == ["f", "m"] or body["values"] == ["m", "f"]
    for arm in ("champion", "bandit"):
        for g in "fm":
            mine = [r for r in rows if r["arm"] == arm
                    and r["context"]["user"]["gender"] == g]
            row = _value(body, arm, g)
            assert row["n"] == row["decisions"] == len(mine)
            assert row["units"] == len({r["unit_id"] for r in mine})
            assert math.isclose(row["mean"], sum(r["reward"] for r in mine) / len(mine))
            shares = {a["id"]: sum(r["action_id"] == a["id"] for r in mine) / len(mine)
                      for a in ACTIONS}
            assert row["exposure"] == pytest.approx({k: v for k, v in shares.items() if v})
    bandit = [r for r in rows if r["arm"] == "bandit"]
    table = [[sum(r["context"]["user"]["gender"] == g and r["action_id"] == a["id"]
                  for r in bandit) for a in ACTIONS] for g in "fm"]
    golden = stats.chi2_contingency(np.array(table), correction=False)
    test = body["arms"]["bandit"]["exposure_disparity"]
    assert math.isclose(test["chi2"], golden.statistic) and test["df"] == 2
    assert math.isclose(test["p_value"], golden.pvalue, rel_tol=1e-9, abs_tol=1e-300)
    sizes = np.bincount([int(r["unit_id"][1:]) for r in bandit])
    sizes = sizes[sizes > 0]
    assert math.isclose(test["design_effect"], (sizes**2).sum() / sizes.sum())
    assert test["p_value_adjusted"] >= test["p_value"] and test["significant"]
    champion = body["arms"]["champion"]["exposure_disparity"]
    assert champion["chi2"] is None and champion["reason"] == "single_action"
    contrasts = {c["value"]: c for c in body["arms"]["bandit"]["reward_disparity"]["contrasts"]}
    men = [r for r in bandit if r["context"]["user"]["gender"] == "m"]
    assert math.isclose(contrasts["f"]["diff"], _value(body, "bandit", "f")["mean"]
                        - sum(r["reward"] for r in men) / len(men))
    assert contrasts["f"]["significant"] and contrasts["f"]["ci_low"] > 0
    assert contrasts["m"]["diff"] == pytest.approx(-contrasts["f"]["diff"])
    assert body["counterfactual"] is None and body["counterfactual_reason"] == "no_model"
    assert "no_model" in {w["code"] for w in body["warnings"]}


def _model(app, train) -> None:
    """Store a bandit snapshot trained by ``train(learner)`` as the current model."""
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        learner = OnlineLearner(bandit_arguments(exp.config))
        train(learner)
        session.add(Model(experiment_id=exp.id, version=2, arguments=learner.arguments,
                          data=learner.to_bytes(), examples_learned=1, source="learner",
                          created_at=clock.now()))
        session.commit()


def _learn(learner: OnlineLearner, context_of, best_of, n: int = 600) -> None:
    rng = np.random.default_rng(3)
    for i in range(n):
        gender = "fm"[i % 2]
        index = int(rng.integers(0, 3))
        reward = 1.0 if index == best_of(gender) else 0.0
        learner.learn(context_of(gender), PAIRS, index, reward, 1 / 3)


def test_audit_sees_a_model_that_decides_by_the_attribute(app, client, team):
    register(client, team)
    _seed(app, units=60)
    _model(app, lambda lr: _learn(lr, lambda g: {"user": {"gender": g}, "hour": 3},
                                  lambda g: 1 if g == "f" else 0))
    audit = _get(client, team, attribute="user.gender", samples=80)["counterfactual"]
    assert audit["model_version"] == 2 and audit["samples"] == 80 and audit["skipped"] == 0
    assert audit["contexts"] == 80 and audit["mean_tv"] > 0.3 and audit["ci_low"] > 0.2
    assert {(p["from"], p["to"]) for p in audit["pairs"]} == {("f", "m"), ("m", "f")}


def test_audit_of_a_model_blind_to_the_attribute_is_zero(app, client, team):
    """Trained on contexts without the attribute: its features have no weight."""
    register(client, team)
    _seed(app, units=60)
    _model(app, lambda lr: _learn(lr, lambda g: {"hour": 3 if g == "f" else 9},
                                  lambda g: 1 if g == "f" else 0))
    audit = _get(client, team, attribute="user.gender", samples=50)["counterfactual"]
    assert audit["contexts"] == 50 and audit["mean_tv"] == pytest.approx(0, abs=1e-9)
    assert audit["ci_high"] == pytest.approx(0, abs=1e-9)


def test_empty_experiment_and_one_value_give_reasons(app, client, team):
    register(client, team)
    body = _get(client, team, attribute="user.gender")
    assert body["values"] == [] and body["counterfactual"] is None
    assert set(body["arms"]) == {"champion", "bandit"}  # the A/B report's arms and order
    for arm in body["arms"].values():
        assert arm["values"] == [] and arm["reward_disparity"]["contrasts"] == []
        assert arm["exposure_disparity"]["reason"] == "single_value"
    exp_id = experiment_id(app, "homepage-hero")
    _write(app, [_decision(exp_id, i, "bandit", clock.now() - 100 + i, unit_id="u1",
                           context={"user": {"gender": "f"}}, reward=1.0)
                 for i in range(3)], [])
    body = _get(client, team, attribute="user.gender")
    row = _value(body, "bandit", "f")
    assert row["units"] == 1 and row["ci_low"] is None and row["reason"] == "single_observation"
    assert body["arms"]["bandit"]["reward_disparity"] == {
        "method": "welch_delta_value_vs_rest", "adjustment": "holm", "contrasts": [],
        "reason": "single_value"}


def test_window_top_and_missing(app, client, team):
    register(client, team)
    rows = _seed(app, units=40)
    exp_id = experiment_id(app, "homepage-hero")
    _write(app, [_decision(exp_id, 1000 + i, "bandit", clock.now() - 10, context={},
                           event_id=f"x{i}") for i in range(3)], [])
    body = _get(client, team, attribute="user.gender", top=1)
    assert body["values"][-2:] == ["(other)", "(missing)"] and len(body["values"]) == 3
    assert "attribute_missing" in {w["code"] for w in body["warnings"]}
    middle = rows[len(rows) // 2]["created_at"] - 0.5  # rows are 1 s apart; iso keeps ms
    later = _get(client, team, attribute="user.gender", since=clock.iso(middle))
    counted = sum(r["n"] for a in later["arms"].values() for r in a["values"])
    assert counted == sum(r["created_at"] >= middle for r in rows) + 3


@pytest.mark.parametrize(("params", "field"), [
    ({}, "attribute"),
    ({"attribute": ""}, "attribute"),
    ({"attribute": "user.gender.x"}, "attribute"),
    ({"attribute": "$.x"}, "attribute"),
    ({"attribute": "g", "top": "0"}, "top"),
    ({"attribute": "g", "top": "21"}, "top"),
    ({"attribute": "g", "top": "²"}, "top"),
    ({"attribute": "g", "alpha": "0"}, "alpha"),
    ({"attribute": "g", "alpha": "nan"}, "alpha"),
    ({"attribute": "g", "alpha": "0.6"}, "alpha"),
    ({"attribute": "g", "samples": "1001"}, "samples"),
    ({"attribute": "g", "samples": "-1"}, "samples"),
    ({"attribute": "g", "since": "yesterday"}, "since"),
    ({"attribute": "g", "since": "2021-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"},
     "until"),
    ({"attribute": "g", "until": "soon"}, "until"),
    ({"attribute": "g", "segment": "g"}, "segment"),
])
def test_bad_parameters_are_400_naming_them(client, team, params, field):
    register(client, team)
    response = client.get(URL, query_string=params, headers=team.auth("analyst"))
    assert response.status_code == 400, response.json
    assert response.json["error"]["details"][0]["field"] == field


def test_repeated_parameter_other_team_and_role(client, team, other_team):
    register(client, team)
    response = client.get(URL + "?attribute=a&attribute=b", headers=team.auth("analyst"))
    assert response.status_code == 400
    assert response.json["error"]["details"][0]["field"] == "attribute"
    ok = URL + "?attribute=g"
    assert client.get(ok, headers=other_team.auth("analyst")).status_code == 404
    assert client.get(ok, headers=team.auth("client")).status_code == 403


def test_the_documented_query_parameters_are_the_accepted_ones(client, team):
    register(client, team)
    spec = client.get("/openapi.json").json
    operation = spec["paths"]["/v1/experiments/{key}/reports/fairness"]["get"]
    params = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(params) == {"attribute", "since", "until", "top", "alpha", "samples"}
    assert params["attribute"]["required"] is True
    values = {"attribute": "user.gender", "since": "2026-01-01T00:00:00Z",
              "until": "2030-01-01T00:00:00Z", "top": "20", "alpha": "0.5",
              "samples": "1000"}
    _get(client, team, **values)


def test_decisions_logged_by_rank_and_the_learners_model(app, client, team):
    """The whole path: contexts and actions as rank logs them, the model the learner
    publishes, the audit of that model on them."""
    register(client, team)
    for i in range(12):
        context = {"user_id": f"u-{i % 6}", "user": {"segment": ("new", "pro")[i % 2]}}
        response = rank(client, team, event_id=f"e-{i}", context=context)
        assert response.status_code == 200, response.json
    learn_closed(app)
    body = _get(client, team, attribute="user.segment")
    assert set(body["values"]) == {"new", "pro"}
    assert sum(r["decisions"] for a in body["arms"].values() for r in a["values"]) == 12
    audit = body["counterfactual"]
    assert body["counterfactual_reason"] is None and audit["model_version"] >= 1
    assert audit["samples"] == audit["contexts"] == 12 and audit["skipped"] == 0
    assert 0 <= audit["mean_tv"] <= 1 and audit["units"] == 6


def test_a_pii_attribute_is_grouped_by_its_hashes(client, team):
    register(client, team, pii_fields=["email", "gender"])
    for i in range(6):
        context = {"user_id": f"u-{i}", "user": {"gender": "fm"[i % 2]}}
        assert rank(client, team, event_id=f"e-{i}", context=context).status_code == 200
    body = _get(client, team, attribute="user.gender")
    assert len(body["values"]) == 2 and all(v.startswith("pii:") for v in body["values"])
    assert not {"f", "m"} & set(body["values"])
