"""Rank throughput and client-side latency through gunicorn, next to a no-op ceiling.

The server is `tailor serve` (the `make run` configuration: gunicorn gthread, same flags),
with `TAILOR_BENCH_NOOP=1` so that `POST /bench/noop` (parse JSON, answer JSON, no database)
is served by the same processes. The load generator is `wrk` (closed loop, fixed
concurrency) with bench/wrk/tailor.lua: distinct event ids, 10 inline actions with
features, a realistic nested context; the mix alternates rank and a reward for a decision
ranked by the preceding rank-only cell. The ceiling `noop` receives the very body rank
receives; `noop (context only)` is the smaller body of the first runs (for comparison).
The baseline `noop (plain Flask)` is a minimal Flask app with nothing of Tailor's
(bench/plain_flask.py) answering the same body the same way, under the gunicorn command
line of `tailor serve`, started on the same database's run between Tailor's cells; the
table gives rank's RPS as a share of each no-op's.

    .venv/bin/python -m bench.rank --quick          # ~3 s per cell
    .venv/bin/python -m bench.rank                  # 20 s per cell (docs/bench-rank.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.db import make_engine
from bench._servers import (
    PlainServed,
    Served,
    count_rows,
    cpu_seconds,
    create_tenant,
    database,
    postgres_pids,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "wrk" / "tailor.lua"
PLAIN_NOOP = "noop (plain Flask)"
CATEGORIES = ["shoes", "bags", "hats", "coats", "socks", "belts", "shirts", "jeans", "watches",
              "scarves"]
EXPERIMENT = {
    "key": "bench-hero", "name": "Benchmark hero banner",
    "actions": [{"id": f"hero-{a}", "features": {"category": CATEGORIES[a - 1],
                                                  "price": 10 + a * 7 + 0.5}}
                for a in range(1, 11)],
    "reward": {"events": {"click": 1.0, "purchase": "value"}, "aggregation": "sum",
               "window_seconds": 3600, "default": 0.0},
    "learner": {"exploration": "squarecb",
                "params": {"gamma_scale": 10, "reward_range": [0, 100]}},
    "champion": {"type": "fixed", "action_id": "hero-1"},
    "arms": {"champion": 0.5, "bandit": 0.5},
    "unit_field": "user_id", "status": "running",
}


@dataclass(frozen=True)
class Cell:
    backend: str
    workload: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float   # per request, from its send to its answer (bench/wrk/tailor.lua)
    p99_ms: float
    p999_ms: float
    max_ms: float
    wrk_p99_ms: float  # wrk's own histogram, with its synthetic samples (tailor.lua)
    unmatched: int  # answers the client could not match to a request (none expected)
    non_2xx: int
    socket_errors: int
    wrk_cores: float
    server_cores: float
    database_cores: float  # PostgreSQL's processes (0 for SQLite: it runs in the server)
    busiest_share: float  # of the server's CPU, the busiest process's (1/workers: even)
    decisions_added: int


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is missing: apt-get install wrk")
    return path


def run_wrk(url: str, args: list[str], seconds: float, concurrency: int,
            pin: str | None, script: Path = SCRIPT) -> tuple[dict, float]:
    """One wrk run (one thread); its TAILOR_* summary lines (merged) and its CPU seconds."""
    command = [require_wrk(), "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), url, "--", *args]
    if pin:
        command = ["taskset", "-c", pin, *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    lines = [ln for ln in output.splitlines() if ln.startswith("TAILOR_")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    merged = {k: v for ln in lines for k, v in json.loads(ln.split(" ", 1)[1]).items()}
    return merged, usage.ru_utime + usage.ru_stime


def measure(server: Served, backend: str, workload: str, wrk_args: list[str],
            options: argparse.Namespace) -> Cell:
    before_rows = count_rows(server.database_url, "decisions")
    pids = server.pids()
    database_pids = postgres_pids() if backend == "postgresql" else []
    before, database_before = [cpu_seconds([p]) for p in pids], cpu_seconds(database_pids)
    result, wrk_cpu = run_wrk(server.url, wrk_args, options.seconds, options.concurrency,
                              options.pin_wrk)
    used = [cpu_seconds([p]) - b for p, b in zip(pids, before, strict=True)]
    server_cpu = sum(used)
    # The busiest process's share shows how wrk's kept-alive connections were spread over
    # the workers (see app/cli_serve.py on SO_REUSEPORT).
    busiest = max(used)
    # Backends that started during the cell are missed; the server keeps its pool open.
    database_cpu = cpu_seconds(database_pids) - database_before
    seconds = result["duration_us"] / 1e6
    return Cell(
        backend=backend, workload=workload, concurrency=options.concurrency,
        requests=result["requests"], seconds=seconds, rps=result["requests"] / seconds,
        p50_ms=result["client_p50_us"] / 1e3, p99_ms=result["client_p99_us"] / 1e3,
        p999_ms=result["client_p999_us"] / 1e3, max_ms=result["client_max_us"] / 1e3,
        wrk_p99_ms=result["wrk_p99_us"] / 1e3, unmatched=result["client_unmatched"],
        non_2xx=result["status_errors"], socket_errors=result["socket_errors"],
        wrk_cores=wrk_cpu / seconds, server_cores=server_cpu / seconds,
        database_cores=database_cpu / seconds, busiest_share=busiest / max(server_cpu, 1e-9),
        decisions_added=count_rows(server.database_url, "decisions") - before_rows)


def register(server: Served, admin: str) -> None:
    response = requests.post(server.url + "/v1/experiments", json=EXPERIMENT, timeout=30,
                             headers={"Authorization": f"Bearer {admin}"})
    response.raise_for_status()


def bench_backend(backend: str, options: argparse.Namespace) -> list[Cell]:
    """noop, rank-only and 1:1 rank+reward on one fresh database and one server."""
    env = {"TAILOR_BENCH_NOOP": "1", **dict(kv.split("=", 1) for kv in options.env)}
    with database(backend) as url:
        tenant = create_tenant(url)
        with Served(url, workers=options.workers, threads=options.threads,
                    extra_env=env) as server:
            register(server, tenant.admin)
            key, name = tenant.client, EXPERIMENT["key"]
            warm = min(3.0, options.seconds)
            run_wrk(server.url, ["rank", key, name, "warm"], warm, options.concurrency, None)
            cells = [measure(server, backend, "noop", ["noop", key, name, "noop"], options),
                     measure(server, backend, "noop (context only)",
                             ["noop-small", key, name, "noop-small"], options),
                     plain_noop(url, backend, key, options)]
            rank = measure(server, backend, "rank", ["rank", key, name, "rank"], options)
            cells.append(rank)
            pre_count = str(max(1, rank.requests - 4 * options.concurrency))
            cells.append(measure(server, backend, "rank+reward 1:1",
                                 ["mix", key, name, "mix", "rank", pre_count], options))
            failures = unsuccessful(server)
        if backend == "postgresql":
            print(storage(url))
        if options.learner:
            print(learner_throughput(url, backend))
    if failures:
        print(f"{backend}: answers other than 2xx during the run: {failures}")
    return cells


def plain_noop(url: str, backend: str, key: str, options: argparse.Namespace) -> Cell:
    """The plain-Flask no-op's cell (bench/plain_flask.py), same layout, same body."""
    with PlainServed(url, workers=options.workers, threads=options.threads) as plain:
        run_wrk(plain.url, ["noop", key, "-", "warm"], min(3.0, options.seconds),
                options.concurrency, None)
        return measure(plain, backend, PLAIN_NOOP, ["noop", key, "-", "plain"], options)


def storage(url: str) -> str:
    """Bytes per decision and per reward event on PostgreSQL (tables with their indexes)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        # Partitioned tables: the parent holds nothing; add up its partitions (and the
        # idempotency keys each row needs).
        row = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM decisions) AS decisions, "
            "(SELECT avg(pg_column_size(d.*)) FROM decisions d) AS row_bytes, "
            "(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('decisions'))"
            " + pg_total_relation_size('decision_keys') AS decision_bytes, "
            "(SELECT count(*) FROM reward_events) AS rewards, "
            "(SELECT sum(pg_total_relation_size(relid)) "
            " FROM pg_partition_tree('reward_events'))"
            " + pg_total_relation_size('reward_keys') AS reward_bytes")).one()
    engine.dispose()
    return (f"postgresql storage: {row.decisions} decisions, {row.row_bytes:.0f} bytes per "
            f"row, {row.decision_bytes / row.decisions:.0f} bytes per decision with indexes, "
            f"TOAST and its idempotency key; {row.rewards} reward events, "
            f"{row.reward_bytes / max(1, row.rewards):.0f} bytes each with indexes and keys")


def learner_throughput(url: str, backend: str) -> str:
    """Close every logged window, then time `tailor learn --once` over the whole log."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE decisions SET closes_at = activated_at - 3600 "
                             "WHERE closes_at IS NOT NULL"))
    started = time.monotonic()
    subprocess.run([str(ROOT / ".venv" / "bin" / "tailor"), "learn", "--once"], check=True,
                   cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, capture_output=True)
    seconds = time.monotonic() - started
    with engine.connect() as conn:
        learned = conn.execute(sa.text(
            "SELECT count(*) FROM decisions WHERE learned_version > 0")).scalar_one()
        counters = conn.execute(sa.text("SELECT counters FROM learner_state")).scalar()
    engine.dispose()
    counters = json.loads(counters) if isinstance(counters, str) else counters or {}
    return (f"{backend} learner: `tailor learn --once` learned {learned} decisions in "
            f"{seconds:.1f} s including start-up ({learned / seconds:.0f}/s); while learning "
            f"{counters.get('examples_per_second')} examples/s")


def unsuccessful(server: Served) -> dict[str, float]:
    """Non-2xx answers by route and status, from the server's own /metrics."""
    text = requests.get(server.url + "/metrics", timeout=30).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tailor_http_requests_total" and \
                    not sample.labels["status"].startswith("2"):
                label = f"{sample.labels['endpoint']} {sample.labels['status']}"
                found[label] = found.get(label, 0) + sample.value
    return found


def table(cells: list[Cell]) -> str:
    header = ("| backend | workload | conc | requests | RPS | % of Tailor's noop | "
              "% of plain-Flask noop | p50 ms | p99 ms | "
              "p99.9 ms | max ms | wrk's p99 ms (corrected) | non-2xx | unmatched | "
              "decisions added | wrk cores | server cores | busiest worker's share | "
              "server CPU ms/request | PostgreSQL CPU ms/request |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    tailor = {c.backend: c.rps for c in cells if c.workload == "noop"}
    plain = {c.backend: c.rps for c in cells if c.workload == PLAIN_NOOP}
    for c in cells:
        shares = " | ".join(f"{100 * c.rps / of[c.backend]:.0f}%" if c.backend in of else "-"
                            for of in (tailor, plain))
        lines.append(
            f"| {c.backend} | {c.workload} | {c.concurrency} | {c.requests} | {c.rps:.0f} | "
            f"{shares} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | {c.p999_ms:.2f} | {c.max_ms:.1f} | "
            f"{c.wrk_p99_ms:.2f} | {c.non_2xx + c.socket_errors} | {c.unmatched} | "
            f"{c.decisions_added} | {c.wrk_cores:.2f} | "
            f"{c.server_cores:.2f} | {100 * c.busiest_share:.0f}% | "
            f"{1000 * c.server_cores / c.rps:.2f} | "
            f"{1000 * c.database_cores / c.rps:.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per cell")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per cell")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=4)  # as `make run`
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pin-wrk", default=None, metavar="CPUS",
                        help="taskset the load generator to these CPUs (e.g. 1)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra server environment, e.g. TAILOR_SQLITE_SYNCHRONOUS=NORMAL")
    parser.add_argument("--json", default=None, help="also write the cells to this file")
    parser.add_argument("--learner", action="store_true",
                        help="afterwards, time `tailor learn --once` over the logged decisions")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds = 3.0
    return options


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    require_wrk()
    started = time.monotonic()
    cells = [c for b in options.backends.split(",") for c in bench_backend(b, options)]
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.rank: {os.cpu_count()} cores, workers={options.workers} "
          f"threads={options.threads}, {options.seconds:g} s per cell, "
          f"env={options.env or '-'}, took {time.monotonic() - started:.0f} s, "
          f"load average at the end {load} (other processes share these cores)")
    print(table(cells))
    if options.json:
        Path(options.json).write_text(json.dumps([c.__dict__ for c in cells], indent=1))


if __name__ == "__main__":
    main()
