"""`GET /metrics` in the Prometheus text format.

Request counts and latencies, decisions, rewards and database errors are counted in the
process that served them with `prometheus_client`. gunicorn runs several worker processes
and a scrape reaches only one of them, so `tailor serve` sets `PROMETHEUS_MULTIPROC_DIR`:
every worker then writes its counters to its own memory-mapped file there, and a scrape
adds up the files of all workers, dead ones included (a counter never goes back when a
worker is replaced). Without that variable (tests, `flask run`) the counters are the
process's own.

Learner lag, model version and model age are read from the database at scrape time, with
one small query each that uses the indexes the learner needs anyway. The drift PSI gauge
is set by the drift report when one is computed, never at scrape time.
"""

from __future__ import annotations

import os
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from app import db
from app.auth import current_principal
from app.errors import APIError
from experiments import clock, pending
from experiments.models import Decision, Experiment, Model, Team

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)

# Not registered in prometheus_client's global registry: each scrape builds its own
# registry, so that creating several apps in one process (tests) never collides.
REQUESTS = Counter("tailor_http_requests", "HTTP requests answered, by route template and "
                   "status.", ["method", "endpoint", "status"], registry=None)
LATENCY = Histogram("tailor_http_request_duration_seconds", "Time from the request's "
                    "arrival in the app to its response, by route template.",
                    ["method", "endpoint"], buckets=LATENCY_BUCKETS, registry=None)
DECISIONS = Counter("tailor_decisions", "Rank answers (idempotent replays included), by "
                    "team, experiment and arm.", ["team", "experiment", "arm"], registry=None)
REWARDS = Counter("tailor_rewards", "Rewards received, by outcome (accepted, late, "
                  "duplicate, rejected).", ["outcome"], registry=None)
DATABASE_ERRORS = Counter("tailor_database_errors", "Errors raised by the database driver, "
                          "by kind (operational, integrity, other) and whether the "
                          "connection was lost.", ["kind", "disconnect"], registry=None)
# Set when a drift report is computed (never on scrape); `mostrecent`: across gunicorn
# workers a scrape shows the value of the newest report, whichever worker computed it.
DRIFT_PSI = Gauge("tailor_drift_psi", "Population stability index of a context feature "
                  "in the newest drift report computed (GET .../reports/drift).",
                  ["team", "experiment", "feature"], multiprocess_mode="mostrecent",
                  registry=None)
OWN_METRICS = (REQUESTS, LATENCY, DECISIONS, REWARDS, DATABASE_ERRORS, DRIFT_PSI)


_DECIDED: dict[tuple[str, str, str], Any] = {}


def count_decision(team: str, experiment: str, arm: str) -> None:
    # The labelled child remembered (as observe_request's): `labels()` locks and builds
    # a key on every call; bounded, since experiments come and go.
    child = _DECIDED.get((team, experiment, arm))
    if child is None:
        if len(_DECIDED) >= 10_000:
            _DECIDED.clear()
        child = _DECIDED[(team, experiment, arm)] = DECISIONS.labels(team, experiment, arm)
    child.inc()


def record_drift(team: str, experiment: str, features: list[dict[str, Any]]) -> None:
    """Export the PSI of each feature of a drift report just computed (none: no PSI)."""
    for row in features:
        if row["psi"] is not None:
            DRIFT_PSI.labels(team, experiment, row["feature"]).set(row["psi"])


def count_rewards(outcome: str, amount: int = 1) -> None:
    if amount:
        REWARDS.labels(outcome).inc(amount)


def count_batch(result: dict[str, Any]) -> None:
    """Count the outcome of a reward batch (`accepted` includes `late` there)."""
    count_rewards("accepted", result["accepted"] - result.get("late", 0))
    count_rewards("late", result.get("late", 0))
    count_rewards("duplicate", result["duplicates"])
    count_rewards("rejected", len(result["rejected"]))


_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency (app.hot: no Flask request), through
    the labelled children remembered per (method, endpoint, status): `labels()` takes a
    lock and builds a key on every call."""
    children = _CHILDREN.get((method, endpoint, status))
    if children is None:
        children = (REQUESTS.labels(method, endpoint, str(status)),
                    LATENCY.labels(method, endpoint))
        _CHILDREN[(method, endpoint, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else "unmatched"
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
    return response


def _on_database_error(context: Any) -> None:
    count_database_error(context.sqlalchemy_exception, bool(context.is_disconnect))


def count_database_error(error: BaseException | None, disconnect: bool) -> None:
    kind = ("integrity" if isinstance(error, sa.exc.IntegrityError)
            else "operational" if isinstance(error, sa.exc.OperationalError) else "other")
    DATABASE_ERRORS.labels(kind, str(disconnect).lower()).inc()


class DatabaseCollector:
    """Per-experiment learner and model gauges, read when scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        up = GaugeMetricFamily("tailor_metrics_database_up",
                               "1 if the scrape could read the database, else 0.")
        try:
            families = self._read()
        except sa.exc.DBAPIError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        labels = ["team", "experiment"]
        version = GaugeMetricFamily("tailor_model_version", "Newest model snapshot "
                                    "version (0: none yet).", labels=labels)
        age = GaugeMetricFamily("tailor_model_age_seconds", "Seconds since the newest "
                                "snapshot was written.", labels=labels)
        lag = GaugeMetricFamily("tailor_learner_lag_seconds", "Age of the oldest decision "
                                "whose reward window closed and that is not learned yet "
                                "(0 when none).", labels=labels)
        orphans = GaugeMetricFamily("tailor_orphan_events", "Personalizer rewards and "
                                    "activations whose decision never came within the "
                                    "reward window (experiments.pending).", labels=labels)
        now = clock.now()
        with self.app.extensions[db.EXTENSION]() as session:
            for experiment_id, team, key in _experiments(session):
                orphans.add_metric([team, key], float(
                    pending.orphans(session, experiment_id).orphans))
                newest = _newest_model(session, experiment_id)
                oldest = _oldest_unlearned(session, experiment_id, now)
                version.add_metric([team, key], float(newest[0] if newest else 0))
                if newest:
                    age.add_metric([team, key], max(0.0, now - newest[1]))
                lag.add_metric([team, key], max(0.0, now - oldest) if oldest else 0.0)
        return [version, age, lag, orphans]


def _experiments(session: sa.orm.Session) -> list[tuple[int, str, str]]:
    rows = session.execute(
        sa.select(Experiment.id, Team.name, Experiment.key)
        .join(Team, Team.id == Experiment.team_id)
        .where(Experiment.status.in_(("running", "paused"))).order_by(Experiment.id))
    return [tuple(row) for row in rows]


def _newest_model(session: sa.orm.Session, experiment_id: int) -> tuple[int, float] | None:
    row = session.execute(
        sa.select(Model.version, Model.created_at).where(Model.experiment_id == experiment_id)
        .order_by(Model.version.desc()).limit(1)).first()
    return (row.version, row.created_at) if row else None


def _oldest_unlearned(session: sa.orm.Session, experiment_id: int, now: float) -> float | None:
    # Served by the partial index ix_decisions_unlearned (experiment_id, closes_at).
    return session.scalar(
        sa.select(sa.func.min(Decision.closes_at)).where(
            Decision.experiment_id == experiment_id, Decision.learned_version.is_(None),
            Decision.closes_at < now))


def exposition(app: Flask) -> bytes:
    """The whole text exposition: every worker's counters and the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in OWN_METRICS:
            registry.register(metric)
    registry.register(DatabaseCollector(app))
    return generate_latest(registry)


@bp.get("/metrics")
def metrics():
    if not current_app.config["METRICS_PUBLIC"]:
        principal = current_principal()
        if not principal.allows("analyst"):
            raise APIError(403, "forbidden", "metrics need an analyst or admin key")
    return Response(exposition(current_app), content_type=CONTENT_TYPE)


def _on_direct_error(error: sa.exc.DBAPIError) -> None:
    count_database_error(error, error.connection_invalidated)


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
    sa.event.listen(db.engine_of(app), "handle_error", _on_database_error)
    app.extensions[db.DIRECT].on_error = _on_direct_error
    app.register_blueprint(bp)
