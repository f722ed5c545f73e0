"""Time partitions of decisions and rewards (PostgreSQL), and the idempotency keys that
replace their global unique constraints (both databases).

Time is moved by replacing `experiments.clock.now`. Tests that need partitions make
them first (`maintain` at their own times): the session's database is shared."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import EXTENSION, engine_of
from experiments import clock, partitioning
from experiments.learning import join
from experiments.learning.loop import LearnerLoop
from experiments.partitions import DAY, Span, partition_name, period
from tests.integration.helpers import rank, register
from tests.integration.test_import_log import invoke, line, write

BODY = {"event_id": "e-1", "unit_id": "u-1",
        "context": {"user_id": "u-1", "user": {"segment": "new"}, "hour": 14}}


@pytest.fixture
def postgresql(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("partitioning applies to PostgreSQL only")
    return database_url


def at(monkeypatch: pytest.MonkeyPatch, ts: float) -> None:
    monkeypatch.setattr(clock, "now", lambda: ts)


def maintain(app, now: float, ahead: int = 3, retention: int | None = None):
    return partitioning.maintain(engine_of(app), partitioning.Settings(
        ahead_days=ahead, retention_days=retention), now)


def rows(app, sql: str, **params) -> list:
    with engine_of(app).connect() as connection:
        return list(connection.execute(sa.text(sql), params).all())


def home(app, table: str, where: str, **params) -> list[str]:
    """The partitions holding the matching rows of `table`."""
    return [r[0] for r in rows(app, f"SELECT tableoid::regclass::text FROM {table} "
                                    f"WHERE {where}", **params)]


def day_partition(table: str, ts: float) -> str:
    return partition_name(table, period(ts))


def reward(client, team, event_id: str, key: str | None = None):
    body = {"type": "click"} | ({"idempotency_key": key} if key else {})
    return client.post(f"/v1/events/{event_id}/rewards", json=body, headers=team.auth("client"))


def test_a_retry_days_later_in_another_partition_answers_the_first_decision(
        app, client, team, postgresql, monkeypatch) -> None:
    last_second = period(time.time()).end - 1  # 23:59:59 UTC today
    maintain(app, last_second)
    at(monkeypatch, last_second)
    register(client, team)
    first = rank(client, team, **BODY)
    assert first.status_code == 200
    assert home(app, "decisions", "event_id = 'e-1'") == [
        day_partition("decisions", last_second)]

    later = last_second + 2 * DAY
    at(monkeypatch, later)
    again = rank(client, team, **BODY)
    assert again.status_code == 200 and again.json == first.json
    other = rank(client, team, **(BODY | {"context": {"user_id": "u-1", "hour": 9}}))
    assert other.status_code == 409 and "already used" in other.json["error"]["message"]
    assert len(rows(app, "SELECT id FROM decisions WHERE event_id = 'e-1'")) == 1

    # A reward two days later lands in that day's partition, found through the key.
    assert reward(client, team, "e-1", key="k-1").json["status"] == "late"
    assert home(app, "reward_events", "event_id = 'e-1'") == [
        day_partition("reward_events", later)]
    assert reward(client, team, "e-1", key="k-1").json["status"] == "duplicate"
    assert len(rows(app, "SELECT id FROM reward_events")) == 1


def test_maintain_is_idempotent_and_keeps_partitions_ahead(app, runner, postgresql) -> None:
    now = time.time()
    maintain(app, now, ahead=5)
    again = maintain(app, now, ahead=5)
    assert again.created == [] and again.moved_rows == 0 and again.dropped == []
    for table in ("decisions", "reward_events"):
        with engine_of(app).connect() as connection:
            found = {p.name for p in partitioning.partitions(connection, table)}
        expected = {day_partition(table, now + d * DAY) for d in range(6)}
        assert expected | {f"{table}_default"} <= found
    listed = invoke(runner, "partitions", "list")
    assert listed.exit_code == 0 and day_partition("decisions", now + 5 * DAY) in listed.output
    assert "reward_events_default  DEFAULT" in listed.output
    cli = invoke(runner, "partitions", "maintain", "--ahead", "2")
    assert cli.exit_code == 0 and "created 0 partition(s)" in cli.output


def test_rows_in_the_default_partition_move_into_their_new_partition(
        app, client, team, postgresql, monkeypatch) -> None:
    now = time.time()
    far = period(now + 60 * DAY).start + 3600  # beyond every partition made so far
    at(monkeypatch, far)
    register(client, team)
    first = rank(client, team, **BODY)
    assert reward(client, team, "e-1", key="k-1").json["status"] == "accepted"
    assert home(app, "decisions", "true") == ["decisions_default"]
    assert home(app, "reward_events", "true") == ["reward_events_default"]

    report = maintain(app, now, ahead=61)
    assert report.moved_rows == 2 and day_partition("decisions", far) in report.created
    assert home(app, "decisions", "true") == [day_partition("decisions", far)]
    assert home(app, "reward_events", "true") == [day_partition("reward_events", far)]
    assert maintain(app, now, ahead=61).created == []
    # Keys and replays still work on the moved rows.
    assert rank(client, team, **BODY).json == first.json
    assert reward(client, team, "e-1", key="k-1").json["status"] == "duplicate"
    assert rows(app, "SELECT reward, reward_count FROM decisions") == [(1.0, 1)]


def test_imported_history_waits_in_the_default_partition_until_maintained(
        app, client, runner, team, postgresql, tmp_path: Path) -> None:
    register(client, team)
    path = write(tmp_path / "log.jsonl", [line(i) for i in range(20)])
    assert invoke(runner, "import-log", "--experiment", "homepage-hero", path).exit_code == 0
    assert set(home(app, "decisions", "true")) == {"decisions_default"}
    report = maintain(app, time.time())
    assert report.moved_rows == 20
    assert set(home(app, "decisions", "true")) == {day_partition("decisions", 1_700_000_000)}
    again = invoke(runner, "import-log", "--experiment", "homepage-hero", path)
    assert "imported 0 decisions" in again.output and "20 already logged" in again.output
    assert len(rows(app, "SELECT 1 FROM decision_keys")) == 20


def test_retention_drops_old_partitions_and_their_keys_and_leaves_the_rest_consistent(
        app, client, team, postgresql, monkeypatch) -> None:
    base = period(time.time() - 400 * DAY).start + 12 * 3600  # far from other tests' days
    maintain(app, base)
    at(monkeypatch, base)
    register(client, team)
    for i in range(3):
        assert rank(client, team, **(BODY | {"event_id": f"old-{i}"})).status_code == 200
    assert reward(client, team, "old-0", key="k-old").json["status"] == "accepted"
    recent = base + 39 * DAY
    maintain(app, recent)
    at(monkeypatch, recent)
    for i in range(2):
        assert rank(client, team, **(BODY | {"event_id": f"new-{i}"})).status_code == 200
    assert reward(client, team, "new-0", key="k-new").json["status"] == "accepted"

    now = base + 40 * DAY
    at(monkeypatch, now)
    report = maintain(app, now, retention=30)
    assert day_partition("decisions", base) in report.dropped
    assert day_partition("reward_events", base) in report.dropped
    assert (report.deleted_rows, report.deleted_keys) == (4, 4)
    assert sorted(r[0] for r in rows(app, "SELECT event_id FROM decisions")) == \
        ["new-0", "new-1"]
    assert sorted(r[0] for r in rows(app, "SELECT event_id FROM decision_keys")) == \
        ["new-0", "new-1"]
    assert rows(app, "SELECT idempotency_key FROM reward_keys") == [("k-new",)]
    with engine_of(app).connect() as connection:
        spans = [p.span for p in partitioning.partitions(connection, "decisions") if p.span]
    assert all(s.end > now - 30 * DAY for s in spans)

    log = client.get("/v1/experiments/homepage-hero/decisions", headers=team.auth())
    assert [d["event_id"] for d in log.json["decisions"]] == ["new-0", "new-1"]
    assert log.json["decisions"][0]["rewards"][0]["idempotency_key"] == "k-new"
    ab = client.get("/v1/experiments/homepage-hero/reports/ab", headers=team.auth("analyst"))
    assert ab.status_code == 200
    assert sum(arm["n"] for arm in ab.json["arms"].values()) == 2
    drained = LearnerLoop(app.extensions[EXTENSION]).drain()
    assert drained.processed == 2
    # Idempotency lasts as long as the data: the dropped event id is new again.
    assert rank(client, team, **(BODY | {"event_id": "old-0"})).status_code == 200
    assert home(app, "decisions", "event_id = 'old-0'") == [day_partition("decisions", now)]


def test_erasure_removes_the_units_keys_too(app, client, team) -> None:
    register(client, team)
    assert rank(client, team, **BODY).status_code == 200
    assert rank(client, team, **(BODY | {"event_id": "e-2", "unit_id": "u-2"})).status_code \
        == 200
    assert reward(client, team, "e-1", key="k-1").json["status"] == "accepted"
    erased = client.delete("/v1/units/u-1", headers=team.auth())
    assert erased.status_code == 200 and erased.json["rewards"] == 1
    assert rows(app, "SELECT event_id FROM decision_keys") == [("e-2",)]
    assert rows(app, "SELECT * FROM reward_keys") == []
    assert rows(app, "SELECT event_id FROM decisions") == [("e-2",)]
    assert rank(client, team, **BODY).status_code == 200  # the event id is free again
    assert reward(client, team, "e-1", key="k-1").json["status"] == "accepted"


def test_sqlite_ids_stay_unique_without_a_sequence(app, client, team, database_url) -> None:
    """SQLite numbers decisions inside the INSERT (models.NextId); a path that would
    repeat an id fails loudly instead of logging two decisions under one id."""
    register(client, team)
    for i in range(3):
        assert rank(client, team, **(BODY | {"event_id": f"e-{i}"})).status_code == 200
    ids = [r[0] for r in rows(app, "SELECT id FROM decisions ORDER BY id")]
    assert len(set(ids)) == 3
    if database_url.startswith("sqlite"):
        with pytest.raises(sa.exc.IntegrityError), engine_of(app).begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO decisions SELECT * FROM decisions WHERE id = :id"),
                {"id": ids[0]})


def test_the_cli_says_partitioning_is_postgresql_only_on_sqlite(runner, database_url) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's answer")
    for command in (["partitions", "maintain", "--retention-days", "3"],
                    ["partitions", "list"]):
        result = invoke(runner, *command)
        assert result.exit_code == 0 and "PostgreSQL only" in result.output


def test_the_learner_loop_maintains_at_start_and_survives_a_failure(app) -> None:
    stop, calls = threading.Event(), []

    def maintenance() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("lock timeout")
        stop.set()

    LearnerLoop(app.extensions[EXTENSION], maintenance=maintenance,
                maintenance_seconds=0.0, poll_seconds=0.01).run(stop)
    assert len(calls) == 2


def test_partition_spans_are_whole_days(postgresql, app) -> None:
    with engine_of(app).connect() as connection:
        spans = [p.span for p in partitioning.partitions(connection, "decisions") if p.span]
    assert spans and all(isinstance(s, Span) and s.start % DAY == 0 for s in spans)


def test_the_learner_marks_decisions_in_their_own_days_partitions_only(
        app, client, team, postgresql, monkeypatch) -> None:
    first_day = period(time.time()).start + 10 * DAY  # days no other test ranks on
    maintain(app, first_day, ahead=4)
    register(client, team)
    for day in range(3):
        at(monkeypatch, first_day + day * DAY + 60)
        assert rank(client, team, **(BODY | {"event_id": f"mark-{day}"})).status_code == 200
    (decision_id, created_at), = rows(
        app, "SELECT id, created_at FROM decisions WHERE event_id = 'mark-1'")
    days = [day_partition("decisions", first_day + day * DAY) for day in range(3)]

    def scanned(created: join.Created | None) -> set[str]:
        statement = join.mark_statement([decision_id], 7, created)
        sql = statement.compile(dialect=engine_of(app).dialect,
                                compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in rows(app, f"EXPLAIN {sql}"))
        return {name for name in days if name in plan}

    # By id alone every partition is probed; with the span only that day's.
    assert scanned(None) == set(days)
    assert scanned(join.Created(created_at, created_at)) == {days[1]}
