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
"""

from __future__ import annotations

import argparse
import os
import time

from bench._servers import Served, count_rows, cpu_seconds, create_tenant, database
from bench.rank import EXPERIMENT, ROOT, register, require_wrk, run_wrk

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
    parser.add_argument("--learner", action="store_true",
                        help="run `tailor learn` beside gunicorn, as `make run` does")
    options = parser.parse_args(argv)
    if options.rate <= 0:
        parser.error("--rate must be positive")
    return options


def table(options: argparse.Namespace, result: dict, stored: int, server_cores: float,
          wrk_cores: float) -> str:
    over = result["over_50ms_corrected"]
    header = ("| backend | target/s | achieved/s | scheduled | sent | p50 ms | p99 ms | "
              "p99.9 ms | max ms | over 50 ms | over 50 ms % | from send: p99 ms | max ms | "
              "over 50 ms | wrk p99 ms | non-2xx | socket errors | decisions stored | "
              "server cores | wrk cores |")
    row = (f"| {options.backend} | {options.rate:g} | {result['achieved_rate']:.1f} | "
           f"{result['scheduled']} | {result['sent']} | "
           f"{result['corrected_p50_us'] / 1e3:.1f} | {result['corrected_p99_us'] / 1e3:.1f} | "
           f"{result['corrected_p999_us'] / 1e3:.1f} | {result['corrected_max_us'] / 1e3:.1f} "
           f"| {over} | {100 * over / max(1, result['scheduled']):.3f}% | "
           f"{result['send_p99_us'] / 1e3:.1f} | {result['send_max_us'] / 1e3:.1f} | "
           f"{result['over_50ms_send']} | {result['wrk_p99_us'] / 1e3:.1f} | "
           f"{result['non_2xx']} | {result['socket_errors']} | {stored} | "
           f"{server_cores:.2f} | {wrk_cores:.2f} |")
    return "\n".join([header, "|" + "---|" * (header.count("|") - 1), row])


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    require_wrk()
    with database(options.backend) as url:
        tenant = create_tenant(url)
        with Served(url, workers=options.workers, threads=options.threads,
                    learner=options.learner) as server:
            register(server, tenant.admin)
            key, name = tenant.client, EXPERIMENT["key"]
            run_wrk(server.url, ["rank", key, name, "warm"], 3, 8, None)
            time.sleep(1.0)  # the requests wrk left in flight are answered and stored
            before = count_rows(url, "decisions")
            pids = server.pids()
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            result, wrk_cpu = run_wrk(server.url, ["rank", key, name, "soak", repr(options.rate)],
                                      options.minutes * 60, options.connections, None,
                                      script=SCRIPT)
            server_cpu = cpu_seconds(pids) - cpu_before
            elapsed = time.monotonic() - started
            time.sleep(1.0)
            stored = count_rows(url, "decisions") - before
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.soak: {options.backend}, target {options.rate:g} rank/s for "
          f"{options.minutes:g} min on a fixed schedule, {options.connections} connections, "
          f"workers={options.workers} threads={options.threads}, learner "
          f"{'on' if options.learner else 'off'}, {os.cpu_count()} cores, load average at "
          f"the end {load}")
    print("p50 to max and over 50 ms: latency from each request's due time (corrected), in "
          "0.1 ms buckets (a bucket's upper edge); over 50 ms includes requests still "
          "unanswered, or due and unsent, at the end that were already over 50 ms late "
          f"({result['late_unanswered']} + {result['late_unsent']}). From send: each "
          "request's latency from its actual send (wrk's measure). wrk p99: wrk's own "
          "histogram, to which wrk 4 adds synthetic samples after the run (stats_correct). "
          "Server cores: gunicorn" + (" and the learner." if options.learner else "."))
    print(table(options, result, stored, server_cpu / elapsed, wrk_cpu / elapsed))
    print(f"Sends over 1 ms behind the schedule (every connection busy, or wrk late): "
          f"{result['sent_late_1ms']}, at most {result['max_send_lag_us'] / 1e3:.1f} ms "
          "behind.")
    if result["sent"] < 0.99 * result["scheduled"]:
        print(f"The schedule fell behind: {result['scheduled'] - result['sent']} slots due "
              "were never sent (the server could not keep up, or too few --connections).")
    if result["unmatched"]:
        print(f"{result['unmatched']} answers carried no known event id (errors); each was "
              "counted against the oldest unanswered request.")


if __name__ == "__main__":
    main()
