"""What group commit would buy: the cost of one decision insert by transaction size.

Inserts decision rows shaped like the rank benchmark's (10 actions with features, a nested
context) straight through the DBAPI, committing every 1, 2, 4, 8 or 64 rows, on SQLite
(WAL, synchronous NORMAL and FULL) and PostgreSQL. With gunicorn's 4 threads per worker a
worker could group at most 4 concurrent ranks into one commit, so the "4" column next to
"1" is the most group commit could save per rank on this hardware.

    .venv/bin/python -m bench.commit
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import sqlalchemy as sa

from app.db import make_engine
from bench._servers import database

BATCHES = (1, 2, 4, 8, 64)
CONTEXT = json.dumps({"user_id": "u-1", "user": {"segment": "new", "country": "DE",
                                                 "device": "mobile", "tenure_days": 120},
                      "page": {"type": "home", "hour": 9}, "interests": ["shoes", "bags"]})
ACTIONS = json.dumps([{"id": f"hero-{i}", "features": {"category": "shoes", "price": 17.5,
                                                       "brand": "b1", "tags": ["bags", "sale"],
                                                       "discount": True}}
                      for i in range(10)])
PMF = json.dumps([0.1] * 10)


def _setup(connection: sa.Connection) -> int:
    connection.execute(sa.text("INSERT INTO teams (name, pii_salt, created_at) "
                               "VALUES ('bench', 's', 0)"))
    return connection.execute(sa.text(
        "INSERT INTO experiments (team_id, key, status, config, version, created_at, "
        "updated_at) VALUES ((SELECT id FROM teams), 'k', 'running', '{}', 1, 0, 0) "
        "RETURNING id")).scalar_one()


def _insert_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    new_id = ("(SELECT coalesce(max(id), 0) + 1 FROM decisions)" if dialect == "sqlite"
              else "nextval('decisions_id_seq')")
    json_cast = "" if dialect == "sqlite" else "::jsonb"
    return (
        "INSERT INTO decisions (id, experiment_id, event_id, request_hash, arm, policy, "
        "model_version, experiment_version, phase, unit_id, context, actions, pmf, "
        "chosen_index, action_id, propensity, deferred, activated_at, closes_at, reward, "
        "reward_count, learned_version, created_at) VALUES "
        f"({new_id}, {mark}, {mark}, {mark}, 'bandit', 'model:1', 1, 1, 'online', {mark}, "
        f"{mark}{json_cast}, {mark}{json_cast}, {mark}{json_cast}, 3, 'hero-3', 0.1, false, "
        f"{mark}, {mark}, NULL, 0, NULL, {mark})")


def per_insert_us(url: str, rows: int, batch: int, tag: str,
                  pragma: Callable[[object], None] | None = None) -> float:
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        dbapi = raw.dbapi_connection
        dialect = engine.dialect.name
        if dialect == "sqlite":
            dbapi.isolation_level = None  # type: ignore[union-attr]
            if pragma:
                pragma(dbapi)
        else:
            dbapi.autocommit = True  # type: ignore[union-attr]
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT id FROM experiments")
        experiment = cursor.fetchone()[0]
        sql = _insert_sql(dialect)
        begin = "BEGIN IMMEDIATE" if dialect == "sqlite" else "BEGIN"
        started = time.perf_counter()
        for i in range(rows):
            if batch > 1 and i % batch == 0:
                cursor.execute(begin)
            now = 1.8e9 + i
            cursor.execute(sql, (experiment, f"{tag}-{i}", "h" * 64, f"u{i % 5000}", CONTEXT,
                                 ACTIONS, PMF, now, now + 3600, now))
            if batch > 1 and i % batch == batch - 1:
                cursor.execute("COMMIT")
        elapsed = time.perf_counter() - started
        cursor.close()
    finally:
        raw.close()
        engine.dispose()
    return elapsed / rows * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="rows per cell")
    options = parser.parse_args(argv)
    cells: list[tuple[str, list[float]]] = []
    for name, backend, synchronous in (("sqlite NORMAL", "sqlite", "NORMAL"),
                                       ("sqlite FULL", "sqlite", "FULL"),
                                       ("postgresql", "postgresql", None)):
        with database(backend) as url:
            engine = make_engine(url)
            with engine.begin() as connection:
                _setup(connection)
            engine.dispose()

            def pragma(dbapi, level=synchronous):
                dbapi.execute(f"PRAGMA synchronous={level}")

            per_insert_us(url, options.rows // 3, 1, "warm", pragma)
            cells.append((name, [per_insert_us(url, options.rows, batch, f"b{batch}", pragma)
                                 for batch in BATCHES]))
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.commit: {options.rows} rows per cell, wall µs per inserted decision, "
          f"load average {load}")
    print("| database | " + " | ".join(f"{b} per commit" for b in BATCHES) + " | 4 vs 1 |")
    print("|---|" + "---:|" * (len(BATCHES) + 1))
    for name, values in cells:
        print(f"| {name} | " + " | ".join(f"{v:.0f}" for v in values)
              + f" | {values[2] / values[0]:.0%} |")


if __name__ == "__main__":
    main()
