"""Where a rank's CPU goes, stage by stage, next to the no-op's: in one process, through
the app's WSGI entry (app.hot for rank; no gunicorn, no sockets), on a private
SQLite or PostgreSQL.

bench/rank.py measures whole requests through gunicorn; this splits the Python side of
one. The plain-Flask no-op (bench/plain_flask.py: Flask alone, nothing of Tailor's),
Tailor's no-op and the rank requests are timed whole first, in the same process, then
the rank requests again with each part of the view wrapped to add up its CPU time
(callees included), scaled so that the parts add up as in the unwrapped run. The bodies are those of
bench/wrk/tailor.lua (10 actions with features, a nested context), and the time is this
process's CPU time (`time.process_time`): a busy machine stretches wall time, hardly this.
A PostgreSQL write also costs the server's backend CPU, which is not counted here.

    .venv/bin/python -m bench.rank_cpu                       # SQLite and PostgreSQL
    .venv/bin/python -m bench.rank_cpu --backends sqlite --calls 5000
    .venv/bin/python -m bench.rank_cpu --profiles     # a profile lookup vs the same inline

`--profiles`: the same ranks twice, once carrying the `user` object inline and once with
the experiment reading it from the unit's stored profile (namespace `user`, written
beforehand; 256 units, so the worker's profile cache serves them as in steady state),
CPU per rank of each and the difference.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench import plain_flask
from bench._servers import create_tenant, database
from bench.rank import CATEGORIES, EXPERIMENT

PLAIN_ROW = "plain-Flask no-op request (WSGI in, JSON out; nothing of Tailor's)"
SEGMENTS = ["new", "returning", "loyal", "churn-risk"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL"]
DEVICES = ["mobile", "desktop", "tablet"]


def context(i: int) -> dict[str, Any]:
    """bench/wrk/tailor.lua's context_json(i)."""
    return {"user_id": f"u-{i * 7919 % 50000}",
            "user": {"segment": SEGMENTS[i % 4], "country": COUNTRIES[i % 8],
                     "device": DEVICES[i % 3], "tenure_days": i * 13 % 900, "orders": i % 17},
            "page": {"type": "home", "hour": i % 24, "weekday": i % 7},
            "interests": [CATEGORIES[i % 10], CATEGORIES[(i + 3) % 10]],
            "returning": i % 2 == 0}


ACTIONS = [{"id": f"hero-{a}", "features": {
    "category": CATEGORIES[a - 1], "price": 10 + a * 7 + 0.5, "brand": f"b{a % 4}",
    "tags": [CATEGORIES[(a + 5) % 10], "sale"], "discount": a % 3 == 0}} for a in range(1, 11)]


def body(run: str, i: int) -> bytes:
    return json.dumps({"event_id": f"{run}-{i}", "context": context(i % 256),
                       "actions": ACTIONS}).encode()


def round_robin(actions: list[Callable[[int], Any]], calls: int, warm: int = 200,
                block: int = 50) -> list[float]:
    """CPU µs per call of each `action(i)`, i = 0 .. calls-1, timed in blocks of `block`
    calls taken in turn, the first action of each round rotating (after `warm` calls of
    each, i = -1 .. -warm)."""
    for i in range(warm):
        for action in actions:
            action(-1 - i)
    spent = [0.0] * len(actions)
    for round_, start in enumerate(range(0, calls, block)):
        for k in range(len(actions)):
            which = (k + round_) % len(actions)
            began = time.process_time()
            for i in range(start, min(start + block, calls)):
                actions[which](i)
            spent[which] += time.process_time() - began
    return [total / calls * 1e6 for total in spent]


class Wsgi:
    """POST a body to the app's WSGI callable, as gunicorn would hand it over."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key

    def post(self, path: str, data: bytes) -> bytes:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "bench", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(data)),
            "HTTP_AUTHORIZATION": f"Bearer {self.key}", "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False}
        status: list[str] = []
        chunks = self.app(environ, lambda s, _h, _e=None: status.append(s))
        try:
            answer = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]} {answer[:300]!r}")
        return answer


# The rank view's parts, as (label, module, attribute) in call order, indented by depth:
# each is timed inclusively (its callees included) inside real rank requests.
PARTS = [
    ("auth: check the key (KeyCache), scope, rate limit", "app.hot.HotPath", "authorize"),
    ("read the body", "app.hot.HotPath", "body"),
    ("decode the JSON body (msgspec, its shape checked)", "app.hot", "rank_json"),
    ("the experiment (per-process cache)", "experiments.experiment_cache.ExperimentCache",
     "get"),
    ("parse and validate the request", "experiments.rank_commands", "parse_request"),
    ("rank: choose and write", "experiments.ranking", "rank"),
    ("  offered actions", "experiments.ranking", "offered_actions"),
    ("  PII guard of the context", "experiments.ranking.pii", "guard"),
    ("  arm assignment", "experiments.ranking", "choose_arm"),
    ("  the arm's policy (cache, model check)", "experiments.policies.PolicyCache",
     "resolve"),
    ("  pmf: VW --cb_explore_adf (bandit arm)", "bandits.policy.VWPolicy", "pmf"),
    ("  pmf: fixed champion", "bandits.policy.FixedPolicy", "pmf"),
    ("  sample the action", "experiments.ranking", "sample_index"),
    ("  the decision row", "experiments.decision_writes", "decision_row"),
    ("  the durable write (key claim + row, committed)", "experiments.decision_writes",
     "commit_decision"),
    ("count the decision (Prometheus)", "app.hot.metrics", "count_decision"),
    ("encode the answer (orjson)", "app.hot", "encode"),
    ("the view (all of the above)", "app.hot.HotPath", "answer"),
]


def _resolve(path: str) -> Any:
    import importlib

    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ImportError(path)


class Timed:
    """Replace each part by a wrapper that adds its CPU time (inclusive) and calls."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cpu = {label: 0.0 for label, _, _ in PARTS}
        self.calls = dict.fromkeys(self.cpu, 0)
        self._undo: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Timed:
        import functools

        for label, where, name in PARTS:
            if where == "view_functions":  # the view as Flask registered it
                self._wrap_view(label, name)
                continue
            owner = _resolve(where)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)

            def timed(*args: Any, _f: Any = original, _l: str = label, **kwargs: Any) -> Any:
                started = time.process_time()
                try:
                    return _f(*args, **kwargs)
                finally:
                    self.cpu[_l] += time.process_time() - started
                    self.calls[_l] += 1

            wrapper = functools.wraps(original)(timed)
            self._undo.append((owner, name, original))
            setattr(owner, name, wrapper)
        return self

    def _wrap_view(self, label: str, endpoint: str) -> None:
        views = self.app.view_functions
        original = views[endpoint]

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.cpu[label] += time.process_time() - started
                self.calls[label] += 1

        views[endpoint] = timed
        self._undo.append((views, endpoint, original))

    def __exit__(self, *_exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)


def stages(app: Any, tenant: Any, calls: int) -> list[tuple[str, float, int]]:
    """(stage, CPU µs per rank, calls): the whole views unwrapped, then the parts."""
    client = Wsgi(app, tenant.client)
    rank_path = f"/v1/experiments/{EXPERIMENT['key']}/rank"
    bodies = {name: [body(name, i) for i in range(-200, 2 * calls)] for name in
              ("noop", "rank")}
    plain = Wsgi(plain_flask.create_app(), tenant.client)
    # Side by side, in rotating blocks: a loaded machine's drift hits the three alike.
    baseline, noop, whole = round_robin([
        lambda i: plain.post("/bench/noop", bodies["noop"][i + 200]),
        lambda i: client.post("/bench/noop", bodies["noop"][i + 200]),
        lambda i: client.post(rank_path, bodies["rank"][i + 200])], calls)
    rows = [(PLAIN_ROW, baseline, calls),
            ("no-op request (WSGI in, JSON out; Flask)", noop, calls),
            ("rank request (WSGI in, JSON out; app.hot)", whole, calls)]
    with Timed(app) as timed:
        started = time.process_time()
        for i in range(calls, 2 * calls):
            client.post(rank_path, bodies["rank"][i + 200])
        instrumented = time.process_time() - started
    # The wrappers' own cost inflates the instrumented run a little: scale it out.
    scale = whole / (instrumented / calls * 1e6)
    rows += [(label, timed.cpu[label] / calls * 1e6 * scale, timed.calls[label])
             for label, _, _ in PARTS]
    return rows


def measure(backend: str, calls: int) -> list[tuple[str, float, int]]:
    """`stages` on a fresh, migrated database of `backend` with one registered experiment."""
    # The app's metrics are multiprocess-mode ones: their directory must exist before the
    # app is imported, hence the imports below.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tailor-m-"))
    with database(backend) as url:
        from app import create_app

        app = create_app({"DATABASE_URL": url, "BENCH_NOOP": True})
        tenant = create_tenant(url)
        response = app.test_client().post(
            "/v1/experiments", json=EXPERIMENT,
            headers={"Authorization": f"Bearer {tenant.admin}"})
        if response.status_code != 201:
            raise RuntimeError(response.get_data(as_text=True))
        try:
            return stages(app, tenant, calls)
        finally:
            from app.db import dispose
            dispose(app)


def interleaved(first: Callable[[int], Any], second: Callable[[int], Any], calls: int,
                warm: int = 512, block: int = 50) -> tuple[float, float]:
    """CPU µs per call of each, timed in alternating blocks (a loaded machine's drift hits
    both alike); the warm-up calls every unit once (profiles read into the cache)."""
    for i in range(warm):
        first(-1 - i)
        second(-1 - i)
    spent = [0.0, 0.0]
    for start in range(0, calls, block):
        for side, action in enumerate((first, second) if start % (2 * block)
                                      else (second, first)):
            began = time.process_time()
            for i in range(start, start + block):
                action(i)
            spent[(side + (0 if start % (2 * block) else 1)) % 2] += \
                time.process_time() - began
    done = (calls + block - 1) // block * block
    return spent[0] / done * 1e6, spent[1] / done * 1e6


def profile_cost(backend: str, calls: int) -> tuple[float, float]:
    """(CPU µs per rank with `user` inline, with `user` merged from the unit's profile)."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tailor-m-"))
    with database(backend) as url:
        from app import create_app

        app = create_app({"DATABASE_URL": url})
        tenant = create_tenant(url)
        admin = {"Authorization": f"Bearer {tenant.admin}"}
        setup = app.test_client()
        for key, extra in (("inline", {}), ("profiled", {"profile": {
                "namespace": "user", "max_age_seconds": 86400}})):
            # The bandit arm only: both experiments serve the same policy to every unit.
            setup.post("/v1/experiments", headers=admin, json={
                **EXPERIMENT, "key": key, "arms": {"bandit": 1.0}, **extra})
        profiles = {context(i)["user_id"]: context(i)["user"] for i in range(256)}
        setup.post("/v1/profiles", headers=admin, json={"profiles": [
            {"unit_id": u, "features": f} for u, f in profiles.items()]})
        client = Wsgi(app, tenant.client)

        def ranked(key: str, strip: bool) -> Callable[[int], Any]:
            def call(i: int) -> Any:
                sent = context(i % 256)
                if strip:
                    sent.pop("user")
                data = json.dumps({"event_id": f"{key}-{i}", "context": sent,
                                   "actions": ACTIONS}).encode()
                return client.post(f"/v1/experiments/{key}/rank", data)
            return call

        try:
            return interleaved(ranked("inline", False), ranked("profiled", True), calls)
        finally:
            from app.db import dispose
            dispose(app)


def table(backend: str, rows: list[tuple[str, float, int]]) -> list[str]:
    found = {name: us for name, us, _ in rows}
    noop = found["no-op request (WSGI in, JSON out; Flask)"]
    plain = found[PLAIN_ROW]
    whole = found["rank request (WSGI in, JSON out; app.hot)"]
    write = found["  the durable write (key claim + row, committed)"]
    view = found["the view (all of the above)"]
    lines = [f"| {backend} | {name.replace('  ', '&nbsp;&nbsp;')} | {us:,.0f} | {n:,} | "
             f"{us / whole * 100:.0f}% |" for name, us, n in rows]
    lines += [
        f"| {backend} | around the view (app.hot's WSGI dispatch, request metrics) | "
        f"{whole - view:,.0f} | | {(whole - view) / whole * 100:.0f}% |",
        f"| {backend} | **no-op / rank** (what bench.rank's 60% goal compares) | | | "
        f"**{noop / whole * 100:.0f}%** |",
        f"| {backend} | no-op / (rank - the write): the same if the write cost nothing | | | "
        f"{noop / (whole - write) * 100:.0f}% |",
        f"| {backend} | **plain-Flask no-op / rank** | | | **{plain / whole * 100:.0f}%** |",
        f"| {backend} | rank's CPU in no-ops: **{whole / noop:.2f}x Tailor's no-op, "
        f"{whole / plain:.2f}x the plain-Flask no-op** (issue 15's goal: 2.5x the no-op) | | "
        "| |",
        f"| {backend} | plain-Flask no-op / Tailor's no-op (the rest: Tailor's request "
        f"machinery) | | | {plain / noop * 100:.0f}% |"]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--profiles", action="store_true",
                        help="a rank with a profile lookup vs the same features inline")
    options = parser.parse_args(argv)
    started = time.monotonic()
    if options.profiles:
        print("| backend | CPU µs per rank, user inline | with a profile lookup | more |")
        print("|---|---|---|---|")
        for backend in options.backends.split(","):
            inline, profiled = profile_cost(backend, options.calls)
            print(f"| {backend} | {inline:,.0f} | {profiled:,.0f} | "
                  f"{(profiled / inline - 1) * 100:+.1f}% |")
        return
    lines = []
    for backend in options.backends.split(","):
        lines += table(backend, measure(backend, options.calls))
    print(f"bench.rank_cpu: {options.calls} calls per cell, CPU time of one process, "
          f"took {time.monotonic() - started:.0f} s")
    print("| backend | part | CPU µs per rank | calls | share of a rank |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
