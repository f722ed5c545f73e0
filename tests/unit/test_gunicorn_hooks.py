"""app/gunicorn_hooks.py: the master freezes its heap before forking a worker."""

from __future__ import annotations

import gc

from app.gunicorn_hooks import pre_fork


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
