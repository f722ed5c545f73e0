"""gunicorn server hooks for app/serve.sh (`--config python:app.gunicorn_hooks`).

Only hooks live here; every setting is on serve.sh's command line, where it is visible.
"""

from __future__ import annotations

import gc
from typing import Any


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
