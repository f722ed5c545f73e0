"""What marking a decision learned costs PostgreSQL, and what a narrow queue would save.

The learner marks every decision it learns (``decisions.learned_version``, committed with
the snapshot: experiments/learning/join.py). The queue of unlearned decisions is a partial
index whose predicate names that column (``ix_decisions_unlearned``), so the mark can
never be a HOT update: PostgreSQL writes a second copy of the wide row (context, actions,
pmf) and a new entry in every index of ``decisions``. In the soak with the learner
learning 1,000 decisions/s that is most of the database's added CPU (BENCHMARKS.md).

This measures, on a private database, three layouts side by side (rotated, repeated):

- ``today``: the schema as migrated; the learner's own UPDATE (``join.mark_statement``).
  Its learner round is also shown part by part: reading the queue, marking, verifying the
  rewards, publishing the snapshot and every worker reading it back, with the snapshot's
  publication as it was before migration 0008 (compressed) beside it.
- ``hot``: the same UPDATE with the partial index dropped and the partition's
  ``fillfactor`` at 90, so the update can stay on its page (HOT: no index entry).
- ``queue``: as ``hot``, plus a narrow ``learn_queue`` table (experiment, closes_at,
  decision) that rank fills in the same transaction as the decision and the learner
  empties in the snapshot's transaction: the layout that would replace the partial index.

For each: rank's side (one decision per transaction, as rank commits) and the learner's
(1,000 marks per transaction, as one snapshot), as PostgreSQL backend CPU
(``/proc/<pid>/schedstat``: the server runs on this machine) and WAL bytes
(``pg_current_wal_insert_lsn``), with the share of updates that were HOT. Rows are shaped
like bench.commit's (a nested context, 10 actions with features).

    .venv/bin/python -m bench.marks
    .venv/bin/python -m bench.marks --rows 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import make_engine
from bandits.learner import OnlineLearner
from bench._servers import postgres_database
from bench.commit import ACTIONS, CONTEXT, PMF, _insert_sql, _setup
from bench.rank import EXPERIMENT
from bench.rank_cpu import ACTIONS as ACTION_BODIES
from bench.rank_cpu import context as rank_context
from experiments.config import ExperimentConfig
from experiments.learning.join import (
    MARK_CHUNK,
    Created,
    fetch_closed,
    mark_statement,
    verify_rewards,
)
from experiments.learning.learner import LearnerSettings
from experiments.learning.snapshots import publish
from experiments.models import Model
from experiments.policies import model_bytes

LAYOUTS = ("today", "hot", "queue")
ROUND = 1000  # decisions per snapshot transaction of the learner


@dataclass(frozen=True)
class Cost:
    """PostgreSQL's cost of one step, per unit (a rank's row, or 1,000 marks)."""

    cpu_us: float
    wal_bytes: float


@dataclass(frozen=True)
class Run:
    layout: str
    rank: Cost    # per decision written
    marks: Cost   # per 1,000 decisions marked
    hot_share: float
    round_parts: dict[str, Cost]  # the rest of a learner's round, per 1,000 decisions


WORKERS = 4  # gunicorn workers of `make run`: each reloads every snapshot
BEFORE_0008 = "before: publish a snapshot compressed (migration 0008 stopped it)"
READ_AS_TEXT = f"before: {WORKERS} workers read it as text (hex-encoded bytea)"
BEFORE = (BEFORE_0008, READ_AS_TEXT)  # baselines measured in the same run, not in the total


class Backend:
    """One connection and the server process behind it."""

    def __init__(self, url: str):
        # One pooled connection, so the session's every transaction runs on one backend.
        self.engine = make_engine(url, pool_size=1)
        self.session = Session(self.engine)
        self.pid = self.scalar("SELECT pg_backend_pid()")
        self.commit()

    @property
    def connection(self) -> sa.Connection:
        return self.session.connection()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sa.CursorResult[Any]:
        return self.connection.exec_driver_sql(sql, params)

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.execute(sql, params).scalar_one()

    def commit(self) -> None:
        self.session.commit()

    def cpu_ns(self) -> int:
        with open(f"/proc/{self.pid}/schedstat") as handle:
            return int(handle.read().split()[0])

    def wal(self) -> int:
        return int(self.scalar("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"))

    def measure(self, step: Callable[[], None], units: float) -> Cost:
        self.commit()
        wal, cpu = self.wal(), self.cpu_ns()
        step()
        cpu_used, wal_used = self.cpu_ns() - cpu, self.wal() - wal
        if self.scalar("SELECT pg_backend_pid()") != self.pid:
            raise RuntimeError("the session changed connections: the CPU was not all counted")
        return Cost(cpu_used / 1e3 / units, wal_used / units)

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


def prepare(backend: Backend, layout: str) -> int:
    """The layout's schema changes; the experiment's id."""
    experiment = backend.scalar("SELECT id FROM experiments")
    if layout != "today":
        backend.execute("DROP INDEX ix_decisions_unlearned")
        backend.execute("ALTER TABLE decisions_default SET (fillfactor = 90)")
    if layout == "queue":
        backend.execute("CREATE TABLE learn_queue (experiment_id integer, closes_at double "
                       "precision, decision_id bigint, created_at double precision, "
                       "PRIMARY KEY (experiment_id, closes_at, decision_id))")
    backend.commit()
    return experiment


def write_decisions(backend: Backend, layout: str, experiment: int, rows: int,
                    tag: str) -> list[tuple[int, float]]:
    """``rows`` decisions, each in its own transaction as rank writes it: (id, created_at)."""
    sql = _insert_sql("postgresql") + " RETURNING id"
    written = []
    for i in range(rows):
        now = 1.9e9 + len(tag) * 1e6 + i  # the DEFAULT partition: no day partition there
        decision = backend.scalar(sql, (experiment, f"{tag}-{i}", "h" * 64, f"u{i % 5000}",
                                        CONTEXT, ACTIONS, PMF, now, now + 10, now))
        if layout == "queue":
            backend.execute("INSERT INTO learn_queue VALUES (%s, %s, %s, %s)",
                            (experiment, now + 10, decision, now))
        backend.commit()
        written.append((decision, now))
    return written


def mark_all(backend: Backend, layout: str, decisions: list[tuple[int, float]],
             version: int) -> None:
    """The learner's marks, ``ROUND`` per transaction, in chunks of ``MARK_CHUNK``."""
    for start in range(0, len(decisions), ROUND):
        batch = decisions[start:start + ROUND]
        for chunk_start in range(0, len(batch), MARK_CHUNK):
            chunk = batch[chunk_start:chunk_start + MARK_CHUNK]
            ids = [decision for decision, _ in chunk]
            if layout == "queue":
                backend.execute("DELETE FROM learn_queue WHERE decision_id = ANY(%s)", (ids,))
            created = Created(min(c for _, c in chunk), max(c for _, c in chunk))
            result = backend.connection.execute(mark_statement(ids, version, created))
            if result.rowcount != len(chunk):
                raise RuntimeError(f"marked {result.rowcount} of {len(chunk)}")
        backend.commit()


def hot_updates(backend: Backend) -> tuple[int, int]:
    """(updates, HOT updates) of the partition so far, this backend's own included."""
    backend.commit()
    backend.execute("SELECT pg_stat_force_next_flush()")
    backend.commit()
    row = backend.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                          "WHERE relname = 'decisions_default'").one()
    backend.commit()
    return int(row[0]), int(row[1])


def fetch_all(backend: Backend, experiment: int) -> dict[int, float | None]:
    """The learner's reads of the queue, ``batch_size`` per query; {id: reward read}."""
    batch_size, read, after = LearnerSettings().batch_size, {}, None
    while True:
        batch = fetch_closed(backend.session, experiment, cutoff=float("inf"), after=after,
                             limit=batch_size, default=0.0)
        read.update((decision.decision_id, decision.aggregate) for decision in batch)
        if len(batch) < batch_size:
            break
        after = batch[-1].cursor
    backend.commit()
    return read


def verify_all(backend: Backend, read: dict[int, float | None],
               decisions: list[tuple[int, float]]) -> None:
    """The learner's check that no reward came meanwhile, ``ROUND`` ids per snapshot."""
    created = dict(decisions)
    ids = list(read)
    for start in range(0, len(ids), ROUND):
        chunk = {i: read[i] for i in ids[start:start + ROUND]}
        span = Created(min(created[i] for i in chunk), max(created[i] for i in chunk))
        verify_rewards(backend.session, chunk, span)
    backend.commit()


def snapshot_parts(backend: Backend, experiment: int, model: bytes,
                   rounds: int) -> dict[str, Cost]:
    """One snapshot published per ``ROUND`` decisions and read back by every worker."""
    versions: list[int] = []

    def publish_all() -> None:
        for _ in range(rounds):
            versions.append(publish(backend.session, experiment, arguments="bench",
                                    data=model, examples_learned=0, metrics=None,
                                    source="learner").version)
            backend.commit()

    # The baseline, in the same run: the column as it was before migration 0008
    # (compressed TOAST storage, which pglz tries on every snapshot).
    backend.execute("ALTER TABLE models ALTER COLUMN data SET STORAGE EXTENDED")
    compressed = backend.measure(publish_all, rounds)
    backend.execute("ALTER TABLE models ALTER COLUMN data SET STORAGE EXTERNAL")
    backend.commit()
    del versions[:]

    def reload_all() -> None:  # as experiments.policies loads a snapshot
        for version in versions:
            for _ in range(WORKERS):
                model_bytes(backend.session, experiment, version)
                backend.commit()

    def reload_all_as_text() -> None:  # as it did before (the text protocol: hex)
        for version in versions:
            for _ in range(WORKERS):
                backend.session.scalar(sa.select(Model.data).where(
                    Model.experiment_id == experiment, Model.version == version))
                backend.commit()

    published = backend.measure(publish_all, rounds)
    return {"publish a snapshot": published,
            f"{WORKERS} workers read it": backend.measure(reload_all, rounds),
            BEFORE_0008: compressed,
            READ_AS_TEXT: backend.measure(reload_all_as_text, rounds)}


def one_run(backend: Backend, layout: str, experiment: int, rows: int, rep: int,
            model: bytes) -> Run:
    written: list[tuple[int, float]] = []

    def write() -> None:
        written.extend(write_decisions(backend, layout, experiment, rows, f"r{rep}" * 3))

    rank = backend.measure(write, rows)
    rounds = rows / ROUND
    read: dict[int, float | None] = {}
    parts = {"read the queue": backend.measure(lambda: read.update(
        fetch_all(backend, experiment)), rounds)}
    before = hot_updates(backend)
    marks = backend.measure(lambda: mark_all(backend, layout, written, rep + 1), rounds)
    after = hot_updates(backend)
    parts["verify the rewards"] = backend.measure(
        lambda: verify_all(backend, read, written), rounds)
    parts.update(snapshot_parts(backend, experiment, model, max(1, round(rounds))))
    updated = after[0] - before[0]
    return Run(layout, rank, marks, (after[1] - before[1]) / updated if updated else 0.0,
               parts)


def trained_model(examples: int = 20_000) -> bytes:
    """A model of bench.rank's experiment after ``examples`` updates (its saved size is
    what the soak's learner publishes, ~600 KB)."""
    arguments = ExperimentConfig.parse(EXPERIMENT).learner.vw_arguments
    learner = OnlineLearner(arguments)
    actions = [(a["id"], a["features"]) for a in ACTION_BODIES]
    rng = random.Random(7)
    for i in range(examples):
        chosen = rng.randrange(len(actions))
        learner.learn(rank_context(i), actions, chosen, float(rng.random() < 0.1), 0.1)
    data = learner.to_bytes()
    learner.close()
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4000, help="decisions per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help=f"some of {', '.join(LAYOUTS)} (today is always measured)")
    parser.add_argument("--model-examples", type=int, default=20_000,
                        help="updates of the snapshot's model (20,000: ~1.5 MB saved)")
    parser.add_argument("--pg-url", default=None, help="a database on the server to use "
                        "(default: TAILOR_BENCH_PG_URL, or the test database's server)")
    options = parser.parse_args(argv)
    chosen = set(options.layouts.split(",")) | {"today"}
    if not chosen <= set(LAYOUTS):
        parser.error(f"--layouts: unknown {', '.join(sorted(chosen - set(LAYOUTS)))}")
    options.layouts = [layout for layout in LAYOUTS if layout in chosen]
    model = trained_model(options.model_examples)
    with ExitStack() as stack:
        backends = {}
        for layout in options.layouts:
            url = stack.enter_context(postgres_database(options.pg_url))
            engine = make_engine(url)
            with engine.begin() as connection:
                _setup(connection)
            engine.dispose()
            backend = Backend(url)
            stack.callback(backend.close)
            backends[layout] = (backend, prepare(backend, layout))
        runs: list[Run] = []
        for rep in range(options.repeats):
            turn = rep % len(options.layouts)  # rotate: no layout always first
            for layout in options.layouts[turn:] + options.layouts[:turn]:
                backend, experiment = backends[layout]
                runs.append(one_run(backend, layout, experiment, options.rows, rep, model))
    print_table(runs, options)


def print_table(runs: list[Run], options: argparse.Namespace) -> None:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.marks: PostgreSQL, {options.rows} decisions per run, {options.repeats} "
          f"runs per layout (rotated), medians; backend CPU from /proc/<pid>/schedstat; "
          f"load average {load}")
    print("| layout | rank: backend CPU µs per decision | rank: WAL bytes per decision | "
          "learner: backend CPU ms per 1,000 marks | learner: WAL KB per 1,000 marks | "
          "HOT updates | rank + learner: CPU µs per decision | vs today |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals = {}
    for layout in options.layouts:
        mine = [run for run in runs if run.layout == layout]

        def median(value: Callable[[Run], float], runs: list[Run] = mine) -> float:
            return statistics.median(value(run) for run in runs)
        rank_cpu, marks_cpu = median(lambda r: r.rank.cpu_us), median(lambda r: r.marks.cpu_us)
        totals[layout] = rank_cpu + marks_cpu / ROUND
        print(f"| {layout} | {rank_cpu:.0f} | {median(lambda r: r.rank.wal_bytes):,.0f} | "
              f"{marks_cpu / 1e3:.1f} | {median(lambda r: r.marks.wal_bytes) / 1024:,.0f} | "
              f"{median(lambda r: r.hot_share):.0%} | {totals[layout]:.0f} | "
              f"{totals[layout] / totals['today']:.2f}× |")
    print_round([run for run in runs if run.layout == "today"], len(LAYOUTS))


def print_round(runs: list[Run], layouts: int) -> None:
    """Today's learner round on PostgreSQL, part by part, per 1,000 decisions learned."""
    print()
    print(f"The learner's PostgreSQL work per {ROUND:,} decisions learned (layout today; "
          f"a snapshot per {ROUND:,}, read back by {WORKERS} workers), next to rank's own")
    print("| part | backend CPU ms | WAL KB | share of the learner's CPU |")
    print("|---|---:|---:|---:|")
    parts = {"read the queue": [r.round_parts["read the queue"] for r in runs],
             "mark learned": [r.marks for r in runs]}
    for name in runs[0].round_parts:
        if name != "read the queue":
            parts[name] = [r.round_parts[name] for r in runs]
    cpu = {name: statistics.median(c.cpu_us for c in costs) / 1e3
           for name, costs in parts.items()}
    total = sum(value for name, value in cpu.items() if name not in BEFORE)
    for name, costs in parts.items():
        wal = statistics.median(c.wal_bytes for c in costs) / 1024
        share = "" if name in BEFORE else f"{cpu[name] / total:.0%}"
        print(f"| {name} | {cpu[name]:.1f} | {wal:,.0f} | {share} |")
    rank = statistics.median(r.rank.cpu_us for r in runs) * ROUND / 1e3
    print(f"| **the learner, all of the above** | **{total:.1f}** | | 100% |")
    print(f"| rank's writes of those {ROUND:,} decisions (for scale) | {rank:.1f} | | |")


if __name__ == "__main__":
    main()
