"""The OPE report's ``ab_vs_ope`` (both databases): the bandit arm's randomized value next to
the OPE estimate of the same model version on the champion arm's logs.

A uniform champion and a bandit arm serving a stored VW snapshot (version 1) to returning
units with their own click rates. With the champion's propensities logged correctly the
two agree; when the champion's log claims uniform propensities but favoured the bandit's
preferred action, IPS is biased and the check flags it. A champion that never explores
(fixed) gives ``unsupported``."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from bandits.learner import OnlineLearner
from bandits.policy import VWPolicy
from experiments import clock
from experiments.config import bandit_arguments
from experiments.models import Decision, Experiment, Model
from experiments.ope_report import crosscheck
from tests.conftest import session_of
from tests.integration.helpers import ACTIONS, register
from tests.integration.test_ab_report_pages import sign_in
from tests.integration.test_ope_report import URL, _row

PAIRS = [(a["id"], a["features"]) for a in ACTIONS]
MULTIPLIER = np.array([[2.0, 1.0, 0.5], [0.5, 2.0, 1.0]])  # segment x action


def stored_model(app) -> VWPolicy:
    """Version 1: a learner taught that action s+... suits segment s (2 segments)."""
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        learner = OnlineLearner(bandit_arguments(exp.config))
        for i in range(200):
            s, a = i % 2, (i // 2) % 3
            learner.learn({"segment": f"s{s}"}, PAIRS, a, 1.0 if MULTIPLIER[s, a] == 2 else 0.0,
                          1 / 3)
        session.add(Model(experiment_id=exp.id, version=1, arguments=learner.arguments,
                          data=learner.to_bytes(), examples_learned=200, source="learner",
                          created_at=clock.now()))
        session.commit()
        return VWPolicy(learner.arguments, learner.to_bytes(), version=1)


def seed_arms(app, policy: VWPolicy, skew: float = 0.0, n_units: int = 400) -> None:
    """Returning units (geometric visits, mean 5) with Beta(0.5, 4.5) rates; even units in
    the champion arm (uniform pmf logged; with ``skew`` it really picks the bandit's
    favourite that often), odd units in the bandit arm (the snapshot's pmf)."""
    rng = np.random.default_rng(5)
    pmfs = [np.array(policy.pmf({"segment": f"s{s}"}, PAIRS)) for s in range(2)]
    visits = rng.geometric(0.2, size=n_units)
    units = rng.permutation(np.repeat(np.arange(n_units), visits))
    base = rng.beta(0.5, 4.5, size=n_units)
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        start, rows = clock.now() - 86400, []
        for i, u in enumerate(units.tolist()):
            s = u % 4 // 2
            if u % 2 == 0:
                arm, pmf = "champion", [1 / 3] * 3
                a = int(pmfs[s].argmax()) if rng.random() < skew else int(rng.integers(3))
            else:
                arm, pmf = "bandit", pmfs[s].tolist()
                a = int(rng.choice(3, p=pmfs[s]))
            click = rng.random() < min(1.0, base[u] * MULTIPLIER[s, a])
            row = _row(exp, i, arm, pmf, a, 1.0 if click else None, start + i)
            row.update(unit_id=f"user-{u}", context={"segment": f"s{s}"},
                       model_version=1 if arm == "bandit" else None)
            rows.append(row)
        session.execute(sa.insert(Decision), rows)
        session.commit()


def _check(client, team, **query) -> dict:
    answer = client.get(URL, query_string={"candidates": "uniform", **query},
                        headers=team.auth("analyst"))
    assert answer.status_code == 200, answer.json
    return answer.json


def test_ab_and_ope_agree_when_the_champion_log_is_right(app, client, team) -> None:
    register(client, team, champion={"type": "uniform"})
    seed_arms(app, stored_model(app))
    report = _check(client, team)
    check = report["ab_vs_ope"]
    assert check["status"] == "ok" and check["model_versions"] == [1]
    assert check["estimator"] == "dr" and check["disagree"] is False
    diff = check["difference"]
    assert diff["ci_low"] < 0 < diff["ci_high"]
    assert diff["diff"] == pytest.approx(check["ab"]["value"] - check["ope"]["value"])
    assert check["ab"]["n_units"] == 200 and check["ope"]["n_units"] == 200
    assert check["unsupported_mass"] == 0.0
    assert set(check["ope_by_estimator"]) >= {"ips", "snips", "dr"}
    # the A/B side is the ratio of per-unit sums of the bandit arm's decisions
    with session_of(app) as session:
        rows = session.execute(sa.select(Decision.unit_id, sa.func.coalesce(
            Decision.reward, 0.0)).where(Decision.arm == "bandit")).all()
    assert check["ab"]["value"] == pytest.approx(sum(r for _, r in rows) / len(rows))
    assert check["ab"]["n_decisions"] == len(rows)
    assert not [w for w in report["warnings"] if w["code"] == "ab_ope_disagree"]


def test_the_cli_prints_the_check(app, client, team, runner) -> None:
    register(client, team, champion={"type": "uniform"})
    seed_arms(app, stored_model(app), skew=0.7, n_units=200)
    result = runner.invoke(args=["ope", "--experiment", "homepage-hero", "--candidates",
                                 "uniform", "--estimator", "ips"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "bandit arm, randomized" in x)
    assert line.endswith("-> DISAGREE") and "off-policy (ips)" in line


def test_a_wrong_logged_propensity_is_flagged(app, client, team) -> None:
    register(client, team, champion={"type": "uniform"})
    seed_arms(app, stored_model(app), skew=0.7)
    report = _check(client, team, estimator="ips")
    check = report["ab_vs_ope"]
    assert check["status"] == "ok" and check["estimator"] == "ips"
    assert check["disagree"] is True
    assert check["difference"]["ci_high"] < 0  # OPE overstates the bandit arm
    assert [w for w in report["warnings"] if w["code"] == "ab_ope_disagree"]
    # the analyst page says so in plain words
    sign_in(client, team.analyst)
    html = client.get("/experiments/homepage-hero").get_data(as_text=True)
    section = html[html.index('id="ab-vs-ope"'):]
    section = section[:section.index("</p>")]
    assert 'data-disagree="true"' in section and "they disagree" in section
    assert "ab_vs_ope" not in section and "`" not in section and "<code>" not in section


def test_a_champion_that_never_explores_is_unsupported(app, client, team) -> None:
    register(client, team)  # fixed champion: hero-1 only
    policy = stored_model(app)
    seed_arms(app, policy, n_units=60)
    with session_of(app) as session:  # the champion arm logged its one-hot pmf
        session.execute(sa.update(Decision).where(Decision.arm == "champion").values(
            pmf=[1.0, 0.0, 0.0], chosen_index=0, action_id="hero-1", propensity=1.0))
        session.commit()
    check = _check(client, team)["ab_vs_ope"]
    assert check["status"] == "unsupported" and check["disagree"] is False
    assert check["unsupported_mass"] > crosscheck.MAX_UNSUPPORTED


def test_without_bandit_decisions_there_is_nothing_to_compare(app, client, team) -> None:
    register(client, team, arms={"champion": 1.0})
    assert _check(client, team)["ab_vs_ope"] == {
        "status": "no_bandit_arm", "disagree": False, "arm": "bandit"}



def _store(app, version: int, favourite: int) -> VWPolicy:
    """A snapshot that learned to like ``favourite`` in every segment."""
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        learner = OnlineLearner(bandit_arguments(exp.config))
        for i in range(90):
            a = i % 3
            learner.learn({"segment": f"s{i % 2}"}, PAIRS, a, float(a == favourite), 1 / 3)
        session.add(Model(experiment_id=exp.id, version=version, arguments=learner.arguments,
                          data=learner.to_bytes(), examples_learned=90, source="learner",
                          created_at=clock.now()))
        session.commit()
        return VWPolicy(learner.arguments, learner.to_bytes(), version=version)


def test_each_champion_decision_is_scored_by_the_version_serving_then(app, client,
                                                                     team) -> None:
    """Versions 1 then 2 served the bandit arm; a champion decision logged after version 2's
    first decision is scored with version 2's pmf. Version 3 (never stored) is left out with
    the period it served, and the period starts at version 1's first decision."""
    register(client, team, champion={"type": "uniform"})
    policies = {1: _store(app, 1, favourite=0), 2: _store(app, 2, favourite=2)}
    rng = np.random.default_rng(3)
    start, rows, expected = clock.now() - 86400, [], []
    with session_of(app) as session:
        exp = session.scalars(sa.select(Experiment)).one()
        for i in range(300):
            version = 1 if i < 150 else 2
            context = {"segment": f"s{i % 2}"}
            if i % 2 == 0 and i > 0:
                a, pmf, arm = int(rng.integers(3)), [1 / 3] * 3, "champion"
            else:
                pmf = policies[version].pmf(context, PAIRS)
                a, arm = int(rng.choice(3, p=pmf)), "bandit"
            reward = 1.0 if rng.random() < (0.2, 0.5, 0.8)[a] else None
            row = _row(exp, i, arm, pmf, a, reward, start + i)
            row.update(context=context, unit_id=f"user-{i % 37}",
                       model_version=version if arm == "bandit" else None)
            rows.append(row)
            if arm == "champion":  # version 2 serves from its first decision, i = 151
                target = policies[1 if i < 151 else 2].pmf(context, PAIRS)[a]
                expected.append(target * 3 * (reward or 0.0))
        session.execute(sa.insert(Decision), rows)
        session.commit()
    check = _check(client, team)["ab_vs_ope"]
    assert check["status"] == "ok" and check["model_versions"] == [1, 2]
    assert check["since"] == clock.iso(start)
    ips = check["ope_by_estimator"]["ips"]["value"]
    assert ips == pytest.approx(float(np.mean(expected)), rel=1e-9)
    assert check["ope"]["n_decisions"] == len(expected)

    with session_of(app) as session:  # a newer version 3 served, and was never stored
        session.execute(sa.update(Decision).where(Decision.arm == "bandit",
                                                  Decision.event_id == "e299")
                        .values(model_version=3))
        session.commit()
    check = _check(client, team)["ab_vs_ope"]
    assert check["status"] == "models_missing" and check["versions_left_out"] == [1, 2, 3]
