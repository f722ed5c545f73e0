"""The experiments list's headline numbers, reused for a short while within a process.

A row's verdict needs the whole A/B report (the multiple-testing correction runs over
every metric's comparison, so no smaller query gives the same verdict), and the report
reads every decision of the experiment: seconds at a million decisions, once per
experiment on the list. The list is an overview opened often, so each experiment's
headline is kept for :data:`TTL_SECONDS` or until its configuration changes (a new
version); the experiment's own page always builds a fresh report. The learner's status
(model version, lag) is cheap and always fresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from app.web import verdicts
from experiments.models import Experiment
from experiments.reports import build_report

TTL_SECONDS = 60.0
EXTENSION = "tailor.list_rows"


class ListRows:
    """Headlines per (experiment id, configuration version), each kept ``ttl`` seconds."""

    def __init__(self, ttl: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._rows: dict[tuple[int, int], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def headline(self, session: Session, experiment: Experiment) -> dict[str, Any]:
        """Units, headline lift with CI and verdict (:func:`verdicts.headline`)."""
        key, now = (experiment.id, experiment.version), self._clock()
        with self._lock:
            found = self._rows.get(key)
        if found is not None and now - found[0] < self.ttl:
            return found[1]
        row = verdicts.headline(build_report(session, experiment))
        with self._lock:
            self._rows = {k: v for k, v in self._rows.items() if now - v[0] < self.ttl}
            self._rows[key] = (now, row)
        return row


def of_app() -> ListRows:
    """The current application's cache (one per app, created on first use)."""
    return current_app.extensions.setdefault(EXTENSION, ListRows())
