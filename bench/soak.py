"""Soak: rank at a fixed rate for minutes through gunicorn (`tailor serve`); how many
requests took over 50 ms, counted from when they were due?

Open loop, as wrk2 does (wrk2 is not in Debian; bench/wrk/soak.lua does it on wrk): slot k
of one schedule is due at start + k / rate whatever the server does, and a request's
latency is counted from its slot's due time ("corrected"), so a stall counts against
every request it delayed, not only the few in flight (coordinated omission). Each
request's latency from its actual send (wrk's measure) is shown next to it; the corrected
one is never smaller. (wrk's own histogram, the "wrk p99" column, is neither: after the
run wrk 4 adds synthetic samples to it, see bench/wrk/tailor.lua.)

Connections bound the requests in flight: a request goes out on an idle connection, so
at most `--connections` are outstanding. While the server keeps up, about
rate x latency are in flight (5 at 1,000/s and 5 ms); if all connections are busy, the
schedule falls behind, the next requests go late and the lateness counts in the
corrected latency (the achieved rate stays below the target only if the server stays
behind). 32 connections leave room for 32 ms of latency at 1,000/s before the schedule
itself waits for a connection; more connections do not make a slow server faster.

    .venv/bin/python -m bench.soak --rate 1000 --minutes 10          # the goal (issue 7)
    .venv/bin/python -m bench.soak --rate 1000 --minutes 10 --learner
    .venv/bin/python -m bench.soak --rate 50 --minutes 10 --backend sqlite

Baselines, in the same run and at the same rate, before rank: the plain-Flask no-op
(bench/plain_flask.py under `tailor serve`'s gunicorn command line) and Tailor's own no-op
(`POST /bench/noop` of the same server as rank), each for `--baseline-minutes` (1 by
default; 0 skips them). The table shows each row's server CPU per request and rank's as a
multiple of each no-op's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass

import requests
import sqlalchemy as sa

from app.db import make_engine
from bench._servers import PlainServed, Served, count_rows, cpu_seconds, create_tenant, database
from bench.rank import EXPERIMENT, PLAIN_NOOP, ROOT, require_wrk, run_wrk

SCRIPT = ROOT / "bench" / "wrk" / "soak.lua"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="rank calls per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32,
                        help="at most this many requests in flight (see above)")
    parser.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=4)  # as `make run`
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline-minutes", type=float, default=1.0,
                        help="soak each no-op (Tailor's, plain Flask's) this long at the same "
                        "rate first (0: none; at most --minutes)")
    parser.add_argument("--learner", action="store_true",
                        help="run `tailor learn` beside gunicorn, as `make run` does")
    parser.add_argument("--reward-window", type=float, default=None, metavar="SECONDS",
                        help="the experiment's reward window (default: bench.rank's, one "
                        "hour, so the learner has nothing to learn during the soak); e.g. "
                        "5: every decision closes 5 s after its rank and is learned, with "
                        "snapshots published and hot-reloaded by every worker as they come")
    parser.add_argument("--server-log", default=None, metavar="FILE",
                        help="write the server's stderr (gunicorn, the app, the learner: "
                        "slow collections and model loads are logged) to FILE")
    parser.add_argument("--timeline", default=None, metavar="FILE",
                        help="write rank's per-second latency timeline (JSON lines: wall "
                        "time, answers, max ms, over 25 ms, over 50 ms) to FILE")
    options = parser.parse_args(argv)
    if options.rate <= 0:
        parser.error("--rate must be positive")
    return options


@dataclass(frozen=True)
class Soaked:
    workload: str
    minutes: float
    result: dict
    stored: int  # decisions stored during the run (0 for the no-ops)
    server_cores: float
    wrk_cores: float

    @property
    def server_ms_per_request(self) -> float:
        rate = self.result["achieved_rate"]
        return 1000 * self.server_cores / rate if rate else float("nan")


def table(options: argparse.Namespace, rows: list[Soaked]) -> str:
    header = ("| backend | workload | minutes | target/s | achieved/s | scheduled | sent | "
              "p50 ms | p99 ms | p99.9 ms | max ms | over 50 ms | over 50 ms % | "
              "from send: p99 ms | max ms | over 50 ms | wrk p99 ms | non-2xx | "
              "socket errors | decisions stored | server cores | wrk cores | "
              "server CPU ms/request | x Tailor's noop | x plain-Flask noop |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    cpu = {r.workload: r.server_ms_per_request for r in rows}
    for r in rows:
        x, over = r.result, r.result["over_50ms_corrected"]
        times = " | ".join(f"{r.server_ms_per_request / cpu[w]:.2f}" if w in cpu else "-"
                           for w in ("noop", PLAIN_NOOP))
        lines.append(
            f"| {options.backend} | {r.workload} | {r.minutes:g} | {options.rate:g} | "
            f"{x['achieved_rate']:.1f} | {x['scheduled']} | {x['sent']} | "
            f"{x['corrected_p50_us'] / 1e3:.1f} | {x['corrected_p99_us'] / 1e3:.1f} | "
            f"{x['corrected_p999_us'] / 1e3:.1f} | {x['corrected_max_us'] / 1e3:.1f} "
            f"| {over} | {100 * over / max(1, x['scheduled']):.3f}% | "
            f"{x['send_p99_us'] / 1e3:.1f} | {x['send_max_us'] / 1e3:.1f} | "
            f"{x['over_50ms_send']} | {x['wrk_p99_us'] / 1e3:.1f} | "
            f"{x['non_2xx']} | {x['socket_errors']} | {r.stored} | "
            f"{r.server_cores:.2f} | {r.wrk_cores:.2f} | {r.server_ms_per_request:.2f} | "
            f"{times} |")
    return "\n".join(lines)


def soak(server: Served, workload: str, args: list[str], minutes: float,
         options: argparse.Namespace) -> Soaked:
    """One open-loop run of `minutes` at `--rate` against `server` (soak.lua)."""
    url = server.database_url
    run_wrk(server.url, [args[0], *args[1:3], "warm"], 3, 8, None)
    time.sleep(1.0)  # the requests wrk left in flight are answered and stored
    before = count_rows(url, "decisions")
    pids = server.pids()
    checkpoints = checkpoint_counts(url)
    cpu_before, started = cpu_seconds(pids), time.monotonic()
    result, wrk_cpu = run_wrk(server.url, [*args, repr(options.rate)], minutes * 60,
                              options.connections, None, script=SCRIPT)
    server_cpu = cpu_seconds(pids) - cpu_before
    elapsed = time.monotonic() - started
    result["checkpoints"] = [b - a for a, b in zip(checkpoints, checkpoint_counts(url),
                                                    strict=True)]
    time.sleep(1.0)
    return Soaked(workload, minutes, result, count_rows(url, "decisions") - before,
                  server_cpu / elapsed, wrk_cpu / elapsed)


def checkpoint_counts(url: str) -> tuple[int, int]:
    """PostgreSQL's checkpoints so far, timed and requested (server-wide: another
    database's CREATE/DROP DATABASE forces one too); (0, 0) on SQLite."""
    if not url.startswith("postgresql"):
        return 0, 0
    engine = make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT checkpoints_timed, checkpoints_req "
                                   "FROM pg_stat_bgwriter")).one()
    engine.dispose()
    return int(row[0]), int(row[1])


def write_timeline(path: str, result: dict) -> None:
    """Rank's per-second timeline as JSON lines, with wall-clock times (to line the
    stalls up with server logs: PostgreSQL checkpoints, snapshot reloads, GC pauses)."""
    if "seconds" not in result:
        return
    wall = result["start_us"] / 1e6 + time.time() - time.monotonic()
    with open(path, "w") as handle:
        for second, answers, max_us, over25, over50 in result["seconds"]:
            handle.write(json.dumps({"at": round(wall + second, 3), "second": second,
                                     "answers": answers, "max_ms": round(max_us / 1e3, 1),
                                     "over_25ms": over25, "over_50ms": over50}) + "\n")


def worst_seconds(result: dict, count: int = 5) -> str:
    """The seconds of the schedule with the largest latency, for the printout."""
    seconds = sorted(result.get("seconds", []), key=lambda c: -c[2])[:count]
    return ", ".join(f"s{c[0]}: max {c[2] / 1e3:.0f} ms, {c[4]} over 50 ms" for c in seconds)


def register_soaked(server: Served, admin: str, window: float | None) -> None:
    """bench.rank's experiment, with the reward window asked for."""
    body = EXPERIMENT if window is None else \
        {**EXPERIMENT, "reward": {**EXPERIMENT["reward"], "window_seconds": window}}
    response = requests.post(server.url + "/v1/experiments", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {admin}"})
    response.raise_for_status()


def learning_status(server: Served, analyst: str, key: str) -> str:
    """The experiment's learning status in a line: lag, examples, snapshots."""
    status = requests.get(f"{server.url}/v1/experiments/{key}/learning", timeout=30,
                          headers={"Authorization": f"Bearer {analyst}"}).json()
    return (f"lag {status['lag_seconds']} s, {status['pending_decisions']} decisions "
            f"pending, {status['in_window_decisions']} in their window, "
            f"{status['examples_learned']} examples learned, model version "
            f"{status['model_version']}, {status['learner']['snapshots']} snapshots")


def soak_all(url: str, options: argparse.Namespace) -> list[Soaked]:
    """The two no-ops (if asked for), then rank, each on a fresh schedule."""
    tenant = create_tenant(url)
    key, name = tenant.client, EXPERIMENT["key"]
    baseline = min(options.baseline_minutes, options.minutes)
    rows = []
    if baseline > 0:
        with PlainServed(url, workers=options.workers, threads=options.threads) as plain:
            rows.append(soak(plain, PLAIN_NOOP, ["noop", key, "-", "plain"], baseline,
                             options))
    log = open(options.server_log, "w") if options.server_log else None  # noqa: SIM115
    with Served(url, workers=options.workers, threads=options.threads,
                learner=options.learner, stderr=log,
                extra_env={"TAILOR_BENCH_NOOP": "1", "TAILOR_LOG_MODEL_LOADS": "1"}) as server:
        register_soaked(server, tenant.admin, options.reward_window)
        if baseline > 0:
            rows.insert(0, soak(server, "noop", ["noop", key, name, "noop"], baseline,
                                options))
        rows.append(soak(server, "rank", ["rank", key, name, "soak"], options.minutes,
                         options))
        if options.learner:
            options.learner_status = learning_status(server, tenant.analyst, name)
    if log is not None:
        log.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    require_wrk()
    with database(options.backend) as url:
        rows = soak_all(url, options)
    rank = rows[-1].result
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.soak: {options.backend}, target {options.rate:g} requests/s on a fixed "
          f"schedule, rank for {options.minutes:g} min and each no-op for "
          f"{min(options.baseline_minutes, options.minutes):g} min, {options.connections} "
          f"connections, workers={options.workers} threads={options.threads}, learner "
          f"{'on' if options.learner else 'off'}, reward window "
          f"{options.reward_window or EXPERIMENT['reward']['window_seconds']:g} s, "
          f"{os.cpu_count()} cores, load average at "
          f"the end {load}")
    print("p50 to max and over 50 ms: latency from each request's due time (corrected), in "
          "0.1 ms buckets (a bucket's upper edge); over 50 ms includes requests still "
          "unanswered, or due and unsent, at the end that were already over 50 ms late "
          f"(rank: {rank['late_unanswered']} + {rank['late_unsent']}). From send: each "
          "request's latency from its actual send (wrk's measure). wrk p99: wrk's own "
          "histogram, to which wrk 4 adds synthetic samples after the run (stats_correct). "
          "Server cores: gunicorn" + (" and the learner." if options.learner else ".") +
          " noop: Tailor's no-op (same server as rank); plain-Flask noop: "
          "bench/plain_flask.py under the same gunicorn command line; the last two "
          "columns: server CPU per request as a multiple of each no-op's.")
    print(table(options, rows))
    print(f"rank: sends over 1 ms behind the schedule (every connection busy, or wrk late): "
          f"{rank['sent_late_1ms']}, at most {rank['max_send_lag_us'] / 1e3:.1f} ms "
          "behind.")
    timed, requested = rank["checkpoints"]
    if timed or requested:
        print(f"rank: PostgreSQL checkpoints during the soak: {timed} timed, {requested} "
              "requested (its log has their times, to line up with --timeline).")
    if getattr(options, "learner_status", None):
        print(f"learner at the end of rank: {options.learner_status}.")
    if rank.get("seconds"):
        over = sum(1 for c in rank["seconds"] if c[4])
        print(f"rank: {over} of {len(rank['seconds'])} seconds had a request over 50 ms; "
              f"worst: {worst_seconds(rank)}.")
    if options.timeline:
        write_timeline(options.timeline, rank)
    if rank["sent"] < 0.99 * rank["scheduled"]:
        print(f"The schedule fell behind: {rank['scheduled'] - rank['sent']} slots due "
              "were never sent (the server could not keep up, or too few --connections).")
    if rank["unmatched"]:
        print(f"{rank['unmatched']} answers carried no known event id (errors); each was "
              "counted against the oldest unanswered request.")


if __name__ == "__main__":
    main()
