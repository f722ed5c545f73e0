"""How soon a learned decision reaches the served model (SQLite and PostgreSQL): the
snapshot cadence of a young model, the loop waking when the next decision closes, and
workers swapping new snapshots in from a background thread, never a request's."""

from __future__ import annotations

import time

import sqlalchemy as sa

from experiments import registry
from experiments.learning import snapshots
from experiments.learning.learner import ExperimentLearner, LearnerSettings
from experiments.learning.loop import LearnerLoop
from experiments.models import Decision, Experiment, Model
from experiments.policies import PolicyCache, model_bytes
from tests.conftest import session_of
from tests.integration.helpers import experiment_body
from tests.integration.test_learning_loop import _close_windows, _drain, _setup

# No time or count trigger: only the young-model rule can commit before a flush.
YOUNG = LearnerSettings(grace_seconds=0.0, snapshot_seconds=60.0, snapshot_examples=10_000,
                        snapshot_fraction=0.5)


def _factory(app):
    from app.db import EXTENSION

    return app.extensions[EXTENSION]


def _versions(app) -> list[tuple[int, int]]:
    with session_of(app) as session:
        return [(m.version, m.examples_learned) for m in session.scalars(
            sa.select(Model).order_by(Model.version))]


def _rank_more(client, team, app, first: int, count: int) -> None:
    from tests.integration.helpers import rank

    for index in range(first, first + count):
        assert rank(client, team, key="hero", event_id=f"e{index}").status_code == 200
    _close_windows(app)


def test_a_young_model_is_published_as_soon_as_the_learner_caught_up(client, team, app):
    experiment_id = _setup(client, team, decisions=4)
    learner = ExperimentLearner(_factory(app), experiment_id, "me", YOUNG)
    assert learner.start()
    assert learner.step() == 4  # caught up; 4 pending of 4 learned: committed at once
    assert _versions(app) == [(1, 4)] and learner.pending == 0
    _rank_more(client, team, app, 100, 1)
    assert learner.step() == 1  # 1 pending of 5 learned: under half, it waits
    assert _versions(app) == [(1, 4)] and learner.pending == 1
    assert 59 < learner.due_in() <= 60  # until snapshot_seconds
    _rank_more(client, team, app, 200, 3)
    assert learner.step() == 3  # 4 pending of 8: half again
    assert _versions(app) == [(1, 4), (2, 8)]
    learner.stop()


def test_the_young_model_rule_waits_while_a_backlog_remains(client, team, app):
    experiment_id = _setup(client, team, decisions=5)
    settings = LearnerSettings(grace_seconds=0.0, snapshot_seconds=60.0,
                               snapshot_examples=10_000, snapshot_fraction=0.5, batch_size=2)
    learner = ExperimentLearner(_factory(app), experiment_id, "me", settings)
    assert learner.start()
    assert learner.step() == 2 and learner.step() == 2  # full batches: not caught up
    assert _versions(app) == []
    assert learner.step() == 1  # the last one: caught up, all 5 pending
    assert _versions(app) == [(1, 5)]
    learner.stop()


def test_the_loop_sleeps_until_the_next_decision_closes(client, team, app):
    experiment_id = _setup(client, team, decisions=2)
    with session_of(app) as session:  # one decision closes in 30 s, the other in 45 s
        for offset, decision in zip((30.0, 45.0), session.scalars(sa.select(Decision)),
                                    strict=True):
            decision.closes_at = time.time() + offset
        session.commit()
    settings = LearnerSettings(grace_seconds=2.0)
    loop = LearnerLoop(_factory(app), settings, owner="loop", poll_seconds=3600.0)
    try:
        assert loop._round() == 0  # nothing learnable yet
        assert 30.0 < loop._pause(0.0) <= 32.0  # until the first closes, plus the grace
        with session_of(app) as session:
            session.execute(sa.update(Decision).values(closes_at=time.time() - 10.0))
            session.commit()
        assert loop._round() == 2
        assert loop._pause(0.0) == loop.pace_seconds  # a stream: look again soon
        assert loop._pause(1.0) == 0.0  # that round took longer than the pace
    finally:
        loop.close()
    assert experiment_id in {e for e, in _ids(app)}


def _ids(app):
    with session_of(app) as session:
        return session.execute(sa.select(Experiment.id)).all()


def test_a_watched_cache_swaps_new_snapshots_in_off_the_request_thread(client, team, app):
    experiment_id = _setup(client, team, decisions=3)
    cache = PolicyCache(check_seconds=0.01)
    with session_of(app) as session:
        experiment = session.get(Experiment, experiment_id)
        assert cache.bandit(session, experiment).version == 0  # first use: loaded here
    cache.watch(_factory(app))
    try:
        assert cache.watched
        learner = ExperimentLearner(_factory(app), experiment_id, "me", YOUNG)
        assert learner.start()
        _drain(learner)
        learner.stop()
        deadline = time.monotonic() + 30
        # No session: a request on a watched cache never queries the database.
        while cache.bandit(None, experiment).version != 1:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the watcher did not load version 1"
            time.sleep(0.01)
        assert [(v, thread) for _, v, _, thread in cache.reloads] == [
            (1, "tailor-model-watch")]
    finally:
        cache.unwatch()
    assert not cache.watched


def test_a_watched_cache_keeps_serving_through_a_database_error(client, team, app):
    experiment_id = _setup(client, team, decisions=1)
    cache = PolicyCache(check_seconds=0.01)
    with session_of(app) as session:
        experiment = session.get(Experiment, experiment_id)
        policy = cache.bandit(session, experiment)

    def broken():
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("database is down"))

    cache.watch(broken)
    try:
        time.sleep(0.1)  # several failed checks
        assert cache.watched and cache.bandit(None, experiment) is policy  # type: ignore[arg-type]
    finally:
        cache.unwatch()


def test_a_signal_wakes_the_watcher_long_before_its_periodic_check(client, team, app,
                                                                   tmp_path):
    from app import snapshot_signal

    experiment_id = _setup(client, team, decisions=3)
    signals = tmp_path / "signals"
    signals.mkdir()
    cache = PolicyCache(check_seconds=3600.0)  # only the signal can wake it in time
    with session_of(app) as session:
        experiment = session.get(Experiment, experiment_id)
        assert cache.bandit(session, experiment).version == 0
    cache.watch(_factory(app), snapshot_signal.listener(str(signals)))
    try:
        time.sleep(0.05)  # the watcher blocks on its socket
        loop = LearnerLoop(_factory(app), YOUNG, owner="loop",
                           on_publish=lambda: snapshot_signal.notify(str(signals)))
        loop._refresh()
        assert loop._round() == 3  # young model: published in this round, signal sent
        loop.close()
        deadline = time.monotonic() + 30
        while cache.bandit(None, experiment).version != 1:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the signal did not wake the watcher"
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        cache.unwatch()
    assert time.monotonic() - started < 4  # interrupted, not waiting out a timeout
    assert list(signals.iterdir()) == []  # unwatch closed and removed the socket


def test_with_check_seconds_zero_every_request_checks_even_when_watched(client, team, app):
    experiment_id = _setup(client, team, decisions=3)
    cache = PolicyCache(check_seconds=0.0)
    cache.watch(_factory(app))
    try:
        assert not cache.watched  # the requests check: read-after-write across workers
        with session_of(app) as session:
            experiment = session.get(Experiment, experiment_id)
            assert cache.bandit(session, experiment).version == 0
            learner = ExperimentLearner(_factory(app), experiment_id, "me", YOUNG)
            assert learner.start()
            _drain(learner)
            learner.stop()
            assert cache.bandit(session, experiment).version == 1  # at once, on this thread
        assert [thread for *_, thread in cache.reloads] == ["MainThread"]
    finally:
        cache.unwatch()


def test_the_pace_is_a_setting_of_the_learner(app):
    """`--pace-seconds` / TAILOR_LEARNER_PACE_SECONDS reach the loop through its settings;
    the poll interval bounds it."""
    settings = LearnerSettings(pace_seconds=0.03)
    assert LearnerLoop(_factory(app), settings).pace_seconds == 0.03
    assert LearnerLoop(_factory(app), settings, poll_seconds=0.01).pace_seconds == 0.01
    assert LearnerLoop(_factory(app)).pace_seconds == LearnerSettings().pace_seconds == 0.05


def test_the_learn_command_takes_its_pace_from_a_flag_or_the_environment(app, monkeypatch):
    from app.cli_learn import _settings

    with app.app_context():
        assert _settings({"pace_seconds": 0.03}).pace_seconds == 0.03
        assert _settings({}).pace_seconds == 0.05
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["learn", "--once", "--pace-seconds", "1"])
    assert refused.exit_code == 2 and "--pace-seconds" in refused.output
    monkeypatch.setenv("TAILOR_LEARNER_PACE_SECONDS", "5")
    refused = runner.invoke(args=["learn", "--once"])
    assert refused.exit_code == 2 and "pace" in refused.output.lower()


def test_a_worker_reads_snapshot_bytes_exactly_as_published(app, team):
    """`model_bytes` (binary transfer on PostgreSQL) returns the published bytes, every
    byte value and the text protocol's escape characters included; None for no version."""
    data = bytes(range(256)) * 50 + b"\\x00\\\\" + bytes(1000)
    with session_of(app) as session:
        experiment = registry.create(session, team.team_id, experiment_body(), "test")
        version = snapshots.publish(session, experiment.id, arguments="--cb_explore_adf",
                                    data=data, examples_learned=0, metrics=None,
                                    source="test").version
        session.commit()
        assert model_bytes(session, experiment.id, version) == data
        assert model_bytes(session, experiment.id, version + 1) is None
        assert model_bytes(session, experiment.id + 1000, version) is None
