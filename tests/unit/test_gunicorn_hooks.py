"""app/gunicorn_hooks.py: the master freezes its heap before forking a worker."""

from __future__ import annotations

import gc
import logging

from app.gunicorn_hooks import on_starting, pre_fork


def test_pre_fork_moves_the_heap_out_of_the_collectors_reach():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    live = len(gc.get_objects())
    try:
        pre_fork(server=None, worker=None)
        # Every object tracked before the fork is frozen; a full collection skips them.
        assert gc.get_freeze_count() >= live * 0.9
        assert all(len(gc.get_objects(generation)) < live * 0.1 for generation in range(3))
    finally:
        gc.unfreeze()


def test_the_start_up_line_names_the_address_when_the_master_holds_no_socket():
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    cfg = Config()
    cfg.set("bind", ["127.0.0.1:8123"])
    log = Logger(cfg)
    records = []
    log.error_log.addHandler(type("Keep", (logging.Handler,), {
        "emit": lambda self, record: records.append(record.getMessage())})())
    on_starting(SimpleNamespace(cfg=cfg, log=log))
    log.info("Listening at: %s (%s)", "", 4242)  # gunicorn's line with --reuse-port
    log.info("Listening at: %s (%s)", "http://0.0.0.0:9", 7)  # a master's own socket
    assert records == [
        "Listening at: http://127.0.0.1:8123 (each worker on its own socket) (4242)",
        "Listening at: http://0.0.0.0:9 (7)"]
