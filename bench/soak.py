"""Soak: rank at a fixed rate for minutes through gunicorn (app/serve.sh); how many
requests took over 50 ms?

wrk paces each connection with a Lua delay (wrk2 is not in Debian): the rate is about
connections × 1000 / (delay + latency) requests per second. wrk's latency is measured
from each request's send, so a stall delays later sends rather than counting against them
(coordinated omission); the achieved rate is printed next to the target to show it.

    .venv/bin/python -m bench.soak --rate 1000 --minutes 10          # the goal
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
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    require_wrk()
    delay_ms = max(0, round(options.connections * 1000 / options.rate))
    with database(options.backend) as url:
        tenant = create_tenant(url)
        with Served(url, workers=options.workers, threads=options.threads) as server:
            register(server, tenant.admin)
            key, name = tenant.client, EXPERIMENT["key"]
            run_wrk(server.url, ["rank", key, name, "warm"], 3, 8, None)
            pids = server.pids()
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            result, wrk_cpu = run_wrk(server.url, ["rank", key, name, "soak", str(delay_ms)],
                                      options.minutes * 60, options.connections, None,
                                      script=SCRIPT)
            server_cpu = cpu_seconds(pids) - cpu_before
            elapsed = time.monotonic() - started
            rows = count_rows(url, "decisions")
    seconds = result["duration_us"] / 1e6
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"bench.soak: {options.backend}, target {options.rate:g} rank/s for "
          f"{options.minutes:g} min, {options.connections} connections with a {delay_ms} ms "
          f"pause, {os.cpu_count()} cores, load average at the end {load}")
    print("| backend | target/s | achieved/s | requests | p50 ms | p99 ms | p99.9 ms | max ms "
          "| over 50 ms | non-2xx | decisions stored | server cores | wrk cores |")
    print("|" + "---|" * 13)
    print(f"| {options.backend} | {options.rate:g} | {result['requests'] / seconds:.1f} | "
          f"{result['requests']} | {result['p50_us'] / 1e3:.2f} | {result['p99_us'] / 1e3:.2f} "
          f"| {result['p999_us'] / 1e3:.2f} | {result['max_us'] / 1e3:.1f} | "
          f"{result['over_50ms_percent']:.3f}% | "
          f"{result['status_errors'] + result['socket_errors']} | {rows} | "
          f"{server_cpu / elapsed:.2f} | {wrk_cpu / elapsed:.2f} |")


if __name__ == "__main__":
    main()
