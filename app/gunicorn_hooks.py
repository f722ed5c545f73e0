"""gunicorn server hooks for `tailor serve` (`--config python:app.gunicorn_hooks`).

Only hooks live here; every setting is on the command line that app/cli_serve.py builds,
where it is visible.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any

SLOW_PAUSE_SECONDS = 0.02  # a garbage collection this long is logged (a latency tail)


def pre_fork(server: Any, worker: Any) -> None:
    """Freeze the preloaded heap before each worker is forked.

    With `--preload` the master has imported Flask, SQLAlchemy, SciPy, statsmodels and the
    app: about 145,000 objects that every worker inherits. A full (generation 2) garbage
    collection in a worker walks all of them while holding the GIL, about 40 ms during
    which none of the worker's threads answers: it was the tail of rank latency
    (docs/bench-rank.md). Frozen objects are never walked again, and their memory pages
    stay shared with the master instead of being copied when the collector touches them.
    """
    gc.freeze()


def post_worker_init(worker: Any) -> None:
    """Watch for new model snapshots from a thread of the worker (off the request
    threads: experiments/policies.py), then warm the embeddings."""
    _log_slow_collections(logging.getLogger("tailor.pauses"))
    if os.environ.get("TAILOR_LOG_MODEL_LOADS"):  # every load, with its duration
        logging.getLogger("tailor.policies").setLevel(logging.DEBUG)
    app = worker.wsgi
    extensions = getattr(app, "extensions", {})
    if "tailor.policies" in extensions:
        from app import snapshot_signal
        from app.db import EXTENSION

        wakeup = snapshot_signal.listener(os.environ.get(snapshot_signal.ENV))
        extensions["tailor.policies"].watch(extensions[EXTENSION], wakeup)
    _warm_embeddings(worker)


def _log_slow_collections(log: logging.Logger) -> None:
    """Log every garbage collection of this worker that held the GIL over
    `SLOW_PAUSE_SECONDS`, with its generation: the soak's timeline (bench/soak.py
    --timeline) is lined up with these lines to tell a collection from other stalls."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        seconds = time.perf_counter() - started[0]
        if seconds >= SLOW_PAUSE_SECONDS:
            log.warning("gc generation %s: %.1f ms, %s collected", info.get("generation"),
                        seconds * 1e3, info.get("collected"))

    gc.callbacks.append(callback)


def _warm_embeddings(worker: Any) -> None:
    """Load the sentence model in each worker before it serves, when an experiment
    declares an `embedding` field (with the optional embeddings extra), so the first
    rank-time text does not pay the load; and embed the catalogs' `embedding` fields
    (stored catalogs are ranked from their stored vectors; this covers catalogs stored
    before those existed). experiments.stored_embeddings. Not in the master:
    onnxruntime's thread pools do not survive a fork."""
    from bandits import embeddings

    if not embeddings.available():
        return
    from app.db import EXTENSION
    from experiments.stored_embeddings import warm_catalogs

    app = worker.wsgi
    if EXTENSION not in getattr(app, "extensions", {}):
        return  # not Tailor's app
    with app.app_context():
        session = app.extensions[EXTENSION]()
        try:
            count = warm_catalogs(session)
        finally:
            session.close()
    if count:
        worker.log.info("embedded %d catalog texts", count)


class _ListeningAt(logging.Filter):
    """With `--reuse-port` every worker opens its own socket and the master holds none, so
    gunicorn's start-up line reads `Listening at:  (pid)`: put the bound address in it."""

    def __init__(self, addresses: str) -> None:
        super().__init__()
        self.addresses = addresses

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if str(record.msg).startswith("Listening at:") and isinstance(args, tuple) \
                and args and not args[0]:
            record.args = (f"{self.addresses} (each worker on its own socket)", *args[1:])
        return True


def on_starting(server: Any) -> None:
    """Before the master binds (or, with `--reuse-port`, does not bind) its sockets."""
    addresses = ",".join(f"http://{bind}" for bind in server.cfg.bind)
    server.log.error_log.addFilter(_ListeningAt(addresses))


def worker_exit(server: Any, worker: Any) -> None:
    """A worker stopping normally writes the key uses it recorded but has not written yet
    (experiments/last_used.py)."""
    from experiments.last_used import flush_all

    flush_all()
    policies = getattr(worker.wsgi, "extensions", {}).get("tailor.policies")
    if policies is not None:
        policies.unwatch()  # removes its socket from the signal directory
