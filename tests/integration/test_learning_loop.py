"""The learner against a real database (SQLite and PostgreSQL): reward join, exactly-once
snapshots, crash and resume, leases, modes, settings changes, hot reload."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from bandits.learner import OnlineLearner
from bandits.policy import VWPolicy
from experiments.config import bandit_arguments
from experiments.learning import join, lease
from experiments.learning.learner import ExperimentLearner, LearnerSettings
from experiments.learning.lease import LeaseLost
from experiments.learning.loop import LearnerLoop, Selection
from experiments.models import Decision, Experiment, LearnerState, Model
from experiments.policies import PolicyCache
from tests.conftest import session_of
from tests.integration.helpers import rank, register

# Snapshots only when flushed (or drained): no time, count or young-model trigger.
FAST = LearnerSettings(grace_seconds=0.0, snapshot_seconds=60.0, snapshot_examples=10_000,
                       snapshot_fraction=0.0)
REWARD = {"events": {"click": 1.0}, "aggregation": "sum", "window_seconds": 60,
          "default": 0.25}


class Crash(RuntimeError):
    """Stands for the process being killed at the hook's point."""


def _setup(client, team, decisions: int, rewarded: int = 0, **overrides) -> int:
    register(client, team, key="hero", reward=REWARD, **overrides)
    for index in range(decisions):
        answer = rank(client, team, key="hero", event_id=f"e{index}",
                      context={"user_id": f"u{index}", "user": {"segment": f"s{index % 3}"}})
        assert answer.status_code == 200, answer.json
    for index in range(rewarded):
        response = client.post(f"/v1/events/e{index}/rewards", json={"type": "click"},
                               headers=team.auth("client"))
        assert response.status_code == 202, response.json
    _close_windows(client.application)
    with session_of(client.application) as session:
        return session.scalar(sa.select(Experiment.id).where(Experiment.key == "hero"))


def _close_windows(app) -> None:
    """Time passes: every activated decision's reward window is now closed."""
    with session_of(app) as session:
        session.execute(sa.update(Decision).where(Decision.closes_at.is_not(None))
                        .values(closes_at=Decision.closes_at - 3600.0))
        session.commit()


def _learner(app, experiment_id: int, settings: LearnerSettings = FAST, owner: str = "me",
             hook=None) -> ExperimentLearner:
    learner = ExperimentLearner(session_of_factory(app), experiment_id, owner, settings, hook)
    assert learner.start()
    return learner


def session_of_factory(app):
    from app.db import EXTENSION

    return app.extensions[EXTENSION]


def _drain(learner: ExperimentLearner) -> int:
    total = 0
    while (count := learner.step()) > 0:
        total += count
    learner.flush()
    return total


def _decisions(app) -> list[Decision]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(Decision).order_by(Decision.closes_at,
                                                                 Decision.id)))


def _models(app) -> list[Model]:
    with session_of(app) as session:
        return list(session.scalars(sa.select(Model).order_by(Model.version)))


def _replayed(decisions: list[Decision], arguments: str, default: float) -> OnlineLearner:
    """The model an uninterrupted learner would have: every decision once, in order."""
    model = OnlineLearner(arguments)
    for d in decisions:
        model.learn(d.context, [(a["id"], a["features"]) for a in d.actions], d.chosen_index,
                    join.joined_reward(d.reward, default), d.propensity)
    return model


def _same_policy(snapshot: bytes, model: OnlineLearner, arguments: str) -> bool:
    served = VWPolicy(arguments, snapshot)
    actions = [("hero-1", {"category": "shoes", "price": 49.0}), ("hero-2", {"category": "bags"}),
               ("hero-3", {"category": "hats", "tags": ["new", "sale"]})]
    contexts = [{"user_id": f"u{i}", "user": {"segment": f"s{i % 3}"}} for i in range(6)]
    return all(served.pmf(c, actions) == model.predict(c, actions) for c in contexts)


def test_every_closed_decision_is_learned_once_with_its_joined_reward(client, team, app):
    experiment_id = _setup(client, team, decisions=30, rewarded=12)
    learner = _learner(app, experiment_id)
    assert _drain(learner) == 30
    (model,) = _models(app)
    assert model.examples_learned == 30 and model.source == "learner"
    assert {d.learned_version for d in _decisions(app)} == {model.version}
    totals = model.metrics["progressive"]["total"]
    n, total = (totals["bandit"][i] + totals["champion"][i] for i in (0, 1))
    # 12 clicks (1.0) and 18 defaults (0.25): the join used the default where none came.
    assert n == 30 and total == pytest.approx(12 + 18 * 0.25)
    assert _drain(learner) == 0 and len(_models(app)) == 1  # nothing new, no new snapshot
    with session_of(app) as session:
        arguments = bandit_arguments(session.get(Experiment, experiment_id).config)
    assert model.arguments == arguments
    assert _same_policy(model.data, _replayed(_decisions(app), arguments, 0.25), arguments)


def test_open_windows_and_unactivated_decisions_wait(client, team, app):
    register(client, team, key="hero", reward={**REWARD, "window_seconds": 600})
    rank(client, team, key="hero", event_id="open")
    rank(client, team, key="hero", event_id="deferred", defer_activation=True)
    rank(client, team, key="hero", event_id="activated", defer_activation=True)
    client.post("/v1/events/activated/activate", headers=team.auth("client"))
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id))
    learner = _learner(app, experiment_id)
    assert _drain(learner) == 0
    assert [d.learned_version for d in _decisions(app)] == [None, None, None]
    assert _models(app) == []
    _close_windows(app)
    assert _drain(learner) == 2  # the deferred one was never activated: never learned
    assert {d.event_id: d.learned_version for d in _decisions(app)} == {
        "open": 1, "activated": 1, "deferred": None}


def test_paused_decisions_are_skipped_and_apprentice_champion_learned(client, team, app):
    experiment_id = _setup(client, team, decisions=4)
    client.patch("/v1/experiments/hero", json={"status": "paused"}, headers=team.auth("admin"))
    for index in range(3):
        rank(client, team, key="hero", event_id=f"p{index}")
    _close_windows(app)
    client.patch("/v1/experiments/hero", json={
        "status": "running", "learner": {"exploration": "squarecb",
                                         "params": {"gamma_scale": 10}, "mode": "apprentice"}},
        headers=team.auth("admin"))
    for index in range(5):
        assert rank(client, team, key="hero", event_id=f"a{index}").json["arm"] == "champion"
    _close_windows(app)
    learner = _learner(app, experiment_id)
    assert _drain(learner) == 12
    by_phase: dict[str, set] = {}
    for d in _decisions(app):
        by_phase.setdefault(d.phase, set()).add(d.learned_version)
    (model,) = _models(app)
    assert by_phase == {"online": {1}, "paused": {join.SKIPPED}, "apprentice": {1}}
    assert model.examples_learned == 9


def test_killed_between_learn_and_commit_resumes_exactly_once(client, team, app):
    experiment_id = _setup(client, team, decisions=25, rewarded=9)
    settings = LearnerSettings(grace_seconds=0.0, snapshot_examples=10, batch_size=10,
                               snapshot_seconds=60.0, lease_seconds=0.2)
    commits = []

    def kill_on_second_commit(stage: str) -> None:
        if stage == "before_commit":
            commits.append(stage)
            if len(commits) == 2:
                raise Crash()

    first = _learner(app, experiment_id, settings, owner="first", hook=kill_on_second_commit)
    with pytest.raises(Crash):
        _drain(first)
    (kept,) = _models(app)  # the first snapshot committed, the second not at all
    assert kept.examples_learned == 10
    assert sum(d.learned_version == 1 for d in _decisions(app)) == 10
    assert sum(d.learned_version is None for d in _decisions(app)) == 15
    time.sleep(0.3)  # the dead learner's lease expires
    second = _learner(app, experiment_id, settings, owner="second")
    assert _drain(second) == 15
    latest = _models(app)[-1]
    assert latest.examples_learned == 25  # examples learned == decisions closed
    assert all(d.learned_version in (1, 2, 3) for d in _decisions(app))
    arguments = latest.arguments
    assert _same_policy(latest.data, _replayed(_decisions(app), arguments, 0.25), arguments)


def test_a_second_learner_cannot_take_a_held_lease(client, team, app):
    experiment_id = _setup(client, team, decisions=5)
    holder = _learner(app, experiment_id, owner="holder")
    rival = ExperimentLearner(session_of_factory(app), experiment_id, "rival", FAST)
    assert not rival.start()
    report = LearnerLoop(session_of_factory(app), FAST, owner="loop").drain()
    assert report.processed == 0 and report.busy == ("team-a/hero",)
    assert _drain(holder) == 5
    holder.stop()  # releases: the rival may start at once
    assert rival.start()


def test_a_learner_whose_lease_was_taken_over_cannot_commit(client, team, app):
    experiment_id = _setup(client, team, decisions=6)
    settings = LearnerSettings(grace_seconds=0.0, snapshot_seconds=60.0, lease_seconds=0.1,
                               snapshot_fraction=0.0)
    stale = _learner(app, experiment_id, settings, owner="stale")
    assert stale.step() == 6 and stale.pending == 6
    time.sleep(0.2)
    usurper = _learner(app, experiment_id, settings, owner="usurper")
    with pytest.raises(LeaseLost):
        stale.flush()
    assert _models(app) == [] and stale.pending == 0
    assert _drain(usurper) == 6
    assert [m.examples_learned for m in _models(app)] == [6]


def test_lease_rows_are_per_experiment(client, team, app):
    experiment_id = _setup(client, team, decisions=0)
    with session_of(app) as session:
        assert lease.acquire(session, experiment_id, "a", 30)
        assert not lease.acquire(session, experiment_id, "b", 30)
        assert lease.acquire(session, experiment_id, "a", 30)  # renewal
        lease.release(session, experiment_id, "a")
        assert session.get(LearnerState, experiment_id).lease_owner is None


def test_changed_settings_start_a_fresh_model(client, team, app):
    experiment_id = _setup(client, team, decisions=5)
    learner = _learner(app, experiment_id)
    _drain(learner)
    response = client.patch("/v1/experiments/hero", json={"learner": {
        "exploration": "epsilon", "params": {"epsilon": 0.1}}}, headers=team.auth("admin"))
    assert response.status_code == 200, response.json
    for index in range(3):
        rank(client, team, key="hero", event_id=f"new{index}")
    _close_windows(app)
    assert _drain(learner) == 3
    old, new = _models(app)
    assert old.arguments != new.arguments
    assert (old.examples_learned, new.examples_learned) == (5, 3)
    assert new.arguments == bandit_arguments(response.json)


def test_an_imported_model_supersedes_uncommitted_learning(client, team, app):
    experiment_id = _setup(client, team, decisions=8)
    learner = _learner(app, experiment_id)
    _drain(learner)
    (first,) = _models(app)
    for index in range(4):
        rank(client, team, key="hero", event_id=f"more{index}")
    _close_windows(app)
    assert learner.step() == 4
    imported = client.post("/v1/experiments/hero/models", data=first.data,
                           headers=team.auth("admin"))
    assert imported.status_code == 201, imported.json
    assert learner.flush() is None  # superseded: dropped, nothing committed
    assert _drain(learner) == 4  # re-learned on top of the import
    versions = [(m.version, m.source, m.examples_learned) for m in _models(app)]
    assert versions == [(1, "learner", 8), (2, "import", 0), (3, "learner", 4)]


def test_old_learner_snapshots_are_pruned(client, team, app):
    experiment_id = _setup(client, team, decisions=12)
    settings = LearnerSettings(grace_seconds=0.0, snapshot_examples=2, batch_size=2,
                               keep_snapshots=2, prune_seconds=0.0)
    _drain(_learner(app, experiment_id, settings))
    # Six snapshots were published; the newest two, and the newest of this hour, stay.
    assert [m.version for m in _models(app)] == [5, 6]
    assert _models(app)[-1].examples_learned == 12


def test_workers_hot_reload_the_newest_snapshot(client, team, app):
    experiment_id = _setup(client, team, decisions=6)
    before = rank(client, team, key="hero", event_id="before").json
    assert before["arm"] == "bandit" or before["arm"] == "champion"
    bandit_before = [d.model_version for d in _decisions(app) if d.arm == "bandit"]
    assert set(bandit_before) == {0}  # a fresh model explores before the first snapshot
    _drain(_learner(app, experiment_id))
    versions = set()
    for index in range(12):
        answer = rank(client, team, key="hero", event_id=f"after{index}",
                      context={"user_id": f"z{index}"}).json
        if answer["arm"] == "bandit":
            versions.add(answer["model_version"])
    assert versions == {1}
    logged = {d.model_version for d in _decisions(app)
              if d.event_id.startswith("after") and d.arm == "bandit"}
    assert logged == {1}


def test_learn_command_once(runner, client, team, app):
    _setup(client, team, decisions=7)
    result = runner.invoke(args=["learn", "--once", "--grace-seconds", "0",
                                 "--experiment", "hero"])
    assert result.exit_code == 0, result.output
    assert "learned 7 decisions of 1 experiment(s)" in result.output
    assert [m.examples_learned for m in _models(app)] == [7]


def test_loop_selection_by_key(client, team, app):
    _setup(client, team, decisions=3)
    loop = LearnerLoop(session_of_factory(app), FAST, Selection(("other",)))
    assert loop.drain().experiments == 0
    assert _models(app) == []


def test_policy_cache_checks_for_snapshots_at_most_every_check_seconds(client, team, app):
    experiment_id = _setup(client, team, decisions=4)
    cache = PolicyCache(check_seconds=3600.0)
    with session_of(app) as session:
        experiment = session.get(Experiment, experiment_id)
        assert cache.bandit(session, experiment).version == 0
        _drain(_learner(app, experiment_id))
        assert cache.bandit(session, experiment).version == 0  # not checked again yet
        cache.check_seconds = 0.0  # the check interval has passed
        assert cache.bandit(session, experiment).version == 1


def test_running_loop_learns_keeps_its_lease_while_idle_and_stops_cleanly(client, team, app):
    import threading

    experiment_id = _setup(client, team, decisions=5)
    settings = LearnerSettings(grace_seconds=0.0, snapshot_seconds=0.05, lease_seconds=0.3)
    loop = LearnerLoop(session_of_factory(app), settings, owner="runner", poll_seconds=0.02,
                       refresh_seconds=0.1)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not _models(app) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # idle for two lease lengths: renewed by the idle ticks
        with session_of(app) as session:
            assert not lease.acquire(session, experiment_id, "rival", 30)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [m.examples_learned for m in _models(app)] == [5]
    with session_of(app) as session:
        assert session.get(LearnerState, experiment_id).lease_owner is None


def test_a_reward_committed_after_the_learner_read_it_is_not_lost(client, team, app):
    experiment_id = _setup(client, team, decisions=6)
    learner = _learner(app, experiment_id)
    assert learner.step() == 6
    with session_of(app) as session:  # a reward whose commit was delayed past the grace
        session.execute(sa.update(Decision).where(Decision.event_id == "e2")
                        .values(reward=1.0, reward_count=1))
        session.commit()
    assert learner.flush() is None  # the snapshot saw the change and was not committed
    assert _models(app) == []
    assert _drain(learner) == 6
    (model,) = _models(app)
    arguments = model.arguments
    assert _same_policy(model.data, _replayed(_decisions(app), arguments, 0.25), arguments)


def test_drain_finishes_even_when_a_snapshot_must_be_learned_again(client, team, app):
    _setup(client, team, decisions=8)
    raced = []

    def reward_arrives_while_learning(stage: str) -> None:
        if stage == "learned" and not raced:
            raced.append(stage)
            with session_of(app) as session:
                session.execute(sa.update(Decision).where(Decision.event_id == "e5")
                                .values(reward=1.0, reward_count=1))
                session.commit()

    loop = LearnerLoop(session_of_factory(app), FAST, fault_hook=reward_arrives_while_learning)
    assert loop.drain().processed == 8
    (model,) = _models(app)
    assert model.examples_learned == 8
    arguments = model.arguments
    assert _same_policy(model.data, _replayed(_decisions(app), arguments, 0.25), arguments)


def test_a_context_integer_beyond_64_bits_is_learned_like_any_other(client, team, app):
    """The learner decodes the logged JSON with orjson, which reads an integer beyond 64
    bits as a float: VW sees the same number, so the model is the one learned from the
    standard library's decoding."""
    register(client, team, key="hero", reward=REWARD)
    for index, big in enumerate((2**70, -(2**65), 12)):
        answer = rank(client, team, key="hero", event_id=f"e{index}",
                      context={"user_id": f"u{index}", "account": big})
        assert answer.status_code == 200, answer.json
    _close_windows(app)
    with session_of(app) as session:
        experiment_id = session.scalar(sa.select(Experiment.id).where(Experiment.key == "hero"))
        arguments = bandit_arguments(session.get(Experiment, experiment_id).config)
    assert _drain(_learner(app, experiment_id)) == 3
    (model,) = _models(app)
    assert model.examples_learned == 3
    assert {d.learned_version for d in _decisions(app)} == {model.version}
    replayed = _replayed(_decisions(app), arguments, REWARD["default"])
    assert model.data == replayed.to_bytes()
