"""How long the A/B report takes on 100k and 1M logged decisions (SQLite and PostgreSQL).

Synthetic decisions are bulk-inserted (SQLite `executemany`, PostgreSQL `COPY`), not sent
through the API: 3 arms (champion 45%, bandit 45%, uniform 10%) assigned per unit, one unit
per 10 decisions on average (1M decisions over 100k units), 28 days, a context with
a country and an hour, 3 actions; about 12% of decisions get a click and 2% a purchase
(reward events joined per decision). A second, smaller experiment shares the tables, so
the report must find its own rows. The report is built in-process exactly as
`GET /v1/experiments/{key}/reports/ab` builds it (SQL aggregates + statistics), plain and
with `?segment=user.country`; the table shows the median of `--repeat` runs (wall time,
and this process's CPU time: on SQLite the report's whole CPU, what the wall time would be
on an idle machine), the 1-minute load average meanwhile, and the peak Python memory of one
run (tracemalloc), which does not grow with the number of decisions.

    .venv/bin/python -m bench.reports                       # both backends, 100k and 1M
    .venv/bin/python -m bench.reports --sizes 100000 --backends sqlite --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import make_engine
from bench._servers import database
from experiments import clock, keys, registry
from experiments.models import Experiment
from experiments.reports import ReportOptions, build_report

ARMS = {"champion": 0.45, "bandit": 0.45, "uniform": 0.10}
CLICK = {"champion": 0.10, "bandit": 0.13, "uniform": 0.11}
COUNTRIES = ["DE", "FR", "US", "IT", "ES", "NL", "PL", "SE"]
ACTIONS = [{"id": f"hero-{i}", "features": {"category": c}}
           for i, c in enumerate(["shoes", "bags", "hats"], 1)]
DECISION_COLUMNS = ["experiment_id", "event_id", "request_hash", "arm", "policy",
                    "model_version", "experiment_version", "phase", "unit_id", "context",
                    "actions", "pmf", "chosen_index", "action_id", "propensity", "deferred",
                    "activated_at", "closes_at", "reward", "reward_count", "learned_version",
                    "created_at"]
EVENT_COLUMNS = ["experiment_id", "decision_id", "event_id", "type", "value", "raw_value",
                 "idempotency_key", "late", "received_at"]
CHUNK = 50_000
UNIT_VISITS = 10  # decisions per unit on average: 1M decisions over 100k units


def register(url: str, key: str) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        team = keys.get_or_create_team(session, "bench")
        session.commit()
        experiment = registry.create(session, team.id, {
            "key": key, "arms": ARMS, "champion": {"type": "uniform"},
            "reward": {"events": {"click": 1.0, "purchase": "value"}, "aggregation": "sum",
                       "window_seconds": 600, "default": 0.0},
            "learner": {"exploration": "epsilon", "params": {"reward_range": [0, 100]}}},
            "bench")
        exp_id = experiment.id
    engine.dispose()
    return exp_id


def synthetic(exp_id: int, n: int, seed: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Chunks of decision rows and their events (index in the chunk, type, value)."""
    rng = np.random.default_rng(seed)
    start = clock.now() - 28 * 86400
    actions, pmf = json.dumps(ACTIONS), json.dumps([1 / 3] * 3)
    arm_names = np.array(list(ARMS))
    units = max(n // UNIT_VISITS, 1)
    arm_of_unit = rng.choice(arm_names, units, p=list(ARMS.values()))  # arms per unit
    for offset in range(0, n, CHUNK):
        m = min(CHUNK, n - offset)
        created = np.sort(rng.uniform(start, start + 28 * 86400 - 1000, m))
        country = rng.choice(COUNTRIES, m, p=[.3, .2, .15, .1, .1, .05, .05, .05])
        unit = rng.integers(0, units, m)
        arm = arm_of_unit[unit]
        chosen = rng.integers(0, 3, m)
        click = rng.random(m) < np.vectorize(CLICK.get)(arm)
        buy = np.where(rng.random(m) < 0.02, rng.exponential(40.0, m), 0.0)
        rows, events = [], []
        for i in range(m):
            reward = float(click[i]) + float(buy[i])
            rows.append((exp_id, f"{exp_id}-{offset + i}", "h", str(arm[i]), str(arm[i]), None,
                         1, "online", f"u{unit[i]}",
                         f'{{"user": {{"country": "{country[i]}"}}, "hour": {i % 24}}}',
                         actions, pmf, int(chosen[i]), f"hero-{chosen[i] + 1}", 1 / 3, False,
                         float(created[i]), float(created[i]) + 600,
                         reward if reward else None, int(click[i]) + int(buy[i] > 0), None,
                         float(created[i])))
            if click[i]:
                events.append((i, "click", 1.0))
            if buy[i]:
                events.append((i, "purchase", float(buy[i])))
        yield rows, events


def load(url: str, exp_id: int, n: int, seed: int) -> int:
    """Bulk-insert `n` decisions and their events; the number of events."""
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        count = 0
        for rows, events in synthetic(exp_id, n, seed):
            first = _insert_decisions(raw, engine.dialect.name, rows)
            _insert_events(raw, engine.dialect.name, [
                (exp_id, first + i, rows[i][1], kind, value, value, None, False,
                 rows[i][21] + 5) for i, kind, value in events])
            count += len(events)
        raw.commit()
        _analyze(raw, engine.dialect.name)
    finally:
        raw.close()
        engine.dispose()
    return count


def _analyze(raw: Any, dialect: str) -> None:
    """Planner statistics (and, on PostgreSQL, the visibility map autovacuum would set)."""
    if dialect == "postgresql":
        raw.driver_connection.autocommit = True
        raw.driver_connection.execute("VACUUM ANALYZE")
        raw.driver_connection.autocommit = False
        return
    cursor = raw.cursor()
    cursor.execute("ANALYZE")
    cursor.close()
    raw.commit()


# SQLite has no sequence for these (id, time) keys: the id the models' NextId gives.
_SQLITE_NEXT_ID = "(SELECT coalesce(max(id), 0) + 1 FROM {})"


def _insert_decisions(raw: Any, dialect: str, rows: list[tuple]) -> int:
    """Insert a chunk; the id of its first row (ids are consecutive within a chunk)."""
    _bulk_insert(raw, dialect, "decisions", DECISION_COLUMNS, rows)
    cursor = raw.cursor()
    cursor.execute("SELECT min(id) FROM decisions WHERE experiment_id = %s AND event_id = %s"
                   .replace("%s", "?" if dialect == "sqlite" else "%s"),
                   (rows[0][0], rows[0][1]))
    first = cursor.fetchone()[0]
    cursor.close()
    return first


def _insert_events(raw: Any, dialect: str, rows: list[tuple]) -> None:
    if rows:
        _bulk_insert(raw, dialect, "reward_events", EVENT_COLUMNS, rows)


def _bulk_insert(raw: Any, dialect: str, table: str, columns: list[str],
                 rows: list[tuple]) -> None:
    """COPY on PostgreSQL (ids from the sequence); executemany on SQLite (ids as NextId)."""
    cursor = raw.cursor()
    if dialect == "postgresql":
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(columns))
        cursor.executemany(f"INSERT INTO {table} (id, {', '.join(columns)}) "
                           f"VALUES ({_SQLITE_NEXT_ID.format(table)}, {marks})", rows)
    cursor.close()


@dataclass(frozen=True, slots=True)
class Timing:
    """Median wall seconds and this process's CPU seconds (SQLite runs in-process, so on
    SQLite that is the report's whole CPU; on PostgreSQL the server's is not in it) over
    the builds, the load average meanwhile, and the peak traced MB of one more build."""

    wall: float
    cpu: float
    load: float
    peak_mb: float


def time_report(url: str, key: str, options: ReportOptions, repeat: int
                ) -> tuple[Timing, dict]:
    """Timing of `repeat` builds of the report, and the report."""
    engine = make_engine(url)
    walls, cpus, loads, report = [], [], [], {}
    with Session(engine) as session:
        experiment = session.scalars(sa.select(Experiment).where(Experiment.key == key)).one()
        for _ in range(repeat):
            began, cpu = time.perf_counter(), time.process_time()
            report = build_report(session, experiment, options)
            walls.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
            loads.append(os.getloadavg()[0])
        tracemalloc.start()
        build_report(session, experiment, options)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    engine.dispose()
    return Timing(statistics.median(walls), statistics.median(cpus),
                  statistics.median(loads), peak), report


def run(backend: str, n: int, repeat: int) -> dict[str, Any]:
    with database(backend) as url:
        exp_id = register(url, "hero")
        other = register(url, "other")
        began = time.perf_counter()
        events = load(url, exp_id, n, seed=1) + load(url, other, n // 10, seed=2)
        loaded = time.perf_counter() - began
        plain, report = time_report(url, "hero", ReportOptions(), repeat)
        segmented, _ = time_report(url, "hero", ReportOptions("user.country"), repeat)
    arms = report["arms"]
    return {"backend": backend, "decisions": sum(a["n"] for a in arms.values()),
            "events": events, "load_s": loaded, "plain": plain, "segment": segmented,
            "p_bandit": report["comparisons"][0]["p_value"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| backend | decisions in report | all decisions + events in DB | load (s) "
          "| report (s) | report CPU in-process (s) | ?segment=user.country (s) "
          "| segment CPU in-process (s) | load average | peak Python memory (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            r = run(backend, n, args.repeat)
            total = n + n // 10 + r["events"]
            plain, seg = r["plain"], r["segment"]
            print(f"| {backend} | {r['decisions']:,} | {total:,} | {r['load_s']:.1f} "
                  f"| {plain.wall:.2f} | {plain.cpu:.2f} | {seg.wall:.2f} | {seg.cpu:.2f} "
                  f"| {(plain.load + seg.load) / 2:.1f} "
                  f"| {max(plain.peak_mb, seg.peak_mb):.1f} |", flush=True)


if __name__ == "__main__":
    main()
