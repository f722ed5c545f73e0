"""`tailor demo`: seed a realistic experiment so every page and report has something true
to show.

Everything goes through the real service: the experiment is registered, ranked and
rewarded through the HTTP API (in-process, with real keys), the learner learns as
`tailor learn` does, and the reports are read through the API. Only time is simulated:
a few minutes of traffic, ending two minutes ago, are replayed in seconds
(`experiments.clock.simulated`), with the learner run every simulated minute so the bandit
arm improves while the traffic flows.

The simulated shop: returning users (each visits several times) of three segments, four
banners, and a click rate that depends on segment × banner, so the best banner depends on
the context. The champion shows one fixed banner (good for nobody in particular).
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app

from app import db
from app.cli_base import with_database
from experiments import clock, keys
from experiments.learning.learner import LearnerSettings
from experiments.learning.loop import LearnerLoop, Selection
from experiments.models import Experiment

SEGMENTS = {"new": 0.45, "returning": 0.4, "vip": 0.15}
ACTIONS = [{"id": "spring-sale", "features": {"theme": "discount", "price_level": 1}},
           {"id": "new-arrivals", "features": {"theme": "novelty", "price_level": 2}},
           {"id": "premium", "features": {"theme": "luxury", "price_level": 3}},
           {"id": "brand-story", "features": {"theme": "brand", "price_level": 2}}]
# The truth: click probability by segment × banner (the best banner differs by segment).
CLICK = {"new": {"spring-sale": 0.16, "new-arrivals": 0.06, "premium": 0.02,
                 "brand-story": 0.07},
         "returning": {"spring-sale": 0.06, "new-arrivals": 0.15, "premium": 0.05,
                       "brand-story": 0.07},
         "vip": {"spring-sale": 0.03, "new-arrivals": 0.08, "premium": 0.22,
                 "brand-story": 0.07}}
SIGNUP_AFTER_CLICK = 0.15
WINDOW_SECONDS = 60


def experiment_body(key: str) -> dict[str, Any]:
    return {
        "key": key, "name": "Demo: homepage banner",
        "description": "Seeded by `tailor demo` (simulated traffic).",
        "actions": ACTIONS,
        "reward": {"events": {"click": 1.0, "signup": 3.0}, "aggregation": "sum",
                   "window_seconds": WINDOW_SECONDS, "default": 0.0},
        "learner": {"exploration": "epsilon", "params": {"epsilon": 0.1}},
        "champion": {"type": "fixed", "action_id": "brand-story"},
        "arms": {"champion": 0.5, "bandit": 0.5},
        "unit_field": "user_id", "pii_fields": ["user.email"]}


@dataclass(frozen=True)
class User:
    user_id: str
    segment: str
    device: str
    weight: float  # how often this user comes back


def make_users(count: int, rng: random.Random) -> list[User]:
    names, shares = list(SEGMENTS), list(SEGMENTS.values())
    return [User(f"u-{i:04d}", rng.choices(names, shares)[0],
                 rng.choice(["mobile", "mobile", "desktop"]), rng.uniform(0.5, 2.0))
            for i in range(count)]


@dataclass
class Totals:
    decisions: int = 0
    rewards: int = 0
    snapshots: int = 0


class Demo:
    """Drives the API in-process, in simulated time."""

    def __init__(self, app: Flask, key: str, team: str, rng: random.Random) -> None:
        self.app, self.key, self.rng = app, key, rng
        self.http = app.test_client()
        with app.extensions[db.EXTENSION]() as session:
            row = keys.get_or_create_team(session, team)
            if session.scalar(sa.select(Experiment.id).where(Experiment.team_id == row.id,
                                                             Experiment.key == key)):
                raise click.ClickException(f"experiment {key!r} already exists in team "
                                           f"{team!r}: pass another --key (or --team)")
            self.keys = {scope: keys.create_key(session, row, scope, name="demo")[0]
                         for scope in ("admin", "client", "analyst")}
            session.commit()
        self.team = team
        self.totals = Totals()
        self.pending: list[tuple[float, int, str, str]] = []  # (due, order, event id, type)
        self._order = itertools.count()

    def call(self, method: str, path: str, scope: str, body: Any = None) -> Any:
        response = self.http.open(path, method=method, json=body, headers={
            "Authorization": f"Bearer {self.keys[scope]}"})
        if response.status_code >= 400:
            raise click.ClickException(f"{method} {path}: {response.status_code} "
                                       f"{response.get_data(as_text=True)[:300]}")
        return response.get_json(silent=True)

    def visit(self, user: User, time: clock.SimulatedTime, index: int) -> None:
        hour = int(time.now // 3600) % 24
        answer = self.call("POST", f"/v1/experiments/{self.key}/rank", "client", {
            "event_id": f"demo-{index:06d}",
            "context": {"user_id": user.user_id, "hour": hour,
                        "user": {"segment": user.segment, "device": user.device}}})
        self.totals.decisions += 1
        if self.rng.random() >= CLICK[user.segment][answer["action_id"]]:
            return
        # The click comes seconds later, a signup later still: both inside the window.
        clicked = time.now + min(self.rng.expovariate(1 / 8.0), WINDOW_SECONDS / 2)
        self._schedule(clicked, answer["event_id"], "click")
        if self.rng.random() < SIGNUP_AFTER_CLICK:
            self._schedule(clicked + min(self.rng.expovariate(1 / 10.0),
                                         WINDOW_SECONDS / 2 - 1), answer["event_id"], "signup")

    def _schedule(self, due: float, event_id: str, kind: str) -> None:
        heapq.heappush(self.pending, (due, next(self._order), event_id, kind))

    def deliver(self, time: clock.SimulatedTime, until: float) -> None:
        """Send the rewards due by `until`, each at its own simulated time."""
        while self.pending and self.pending[0][0] <= until:
            due, _, event_id, kind = heapq.heappop(self.pending)
            time.now = max(time.now, due)
            self.call("POST", f"/v1/events/{event_id}/rewards", "client",
                      {"type": kind, "idempotency_key": f"{event_id}:{kind}"})
            self.totals.rewards += 1

    def learn(self) -> None:
        """What `tailor learn --once` does, at the simulated time."""
        settings = LearnerSettings(snapshot_examples=10**9, snapshot_seconds=0.0,
                                   grace_seconds=0.0)
        loop = LearnerLoop(self.app.extensions[db.EXTENSION], settings,
                           Selection((self.key,), self.team))
        if loop.drain().processed:
            self.totals.snapshots += 1


def simulate(demo: Demo, users: list[User], visits: int, minutes: float) -> None:
    """`visits` rank calls spread over `minutes`, ending two minutes ago, the learner run
    every simulated minute and once more at the end (every window has closed by then)."""
    weights = [u.weight for u in users]
    gap = minutes * 60.0 / visits
    start = clock.now() - minutes * 60.0 - 2 * WINDOW_SECONDS
    with clock.simulated(start) as time:
        next_learn = start + 60.0
        for index in range(visits):
            arrival = time.now + demo.rng.expovariate(1.0 / gap)
            demo.deliver(time, arrival)
            time.now = arrival
            if time.now >= next_learn:
                demo.learn()
                next_learn += 60.0
            demo.visit(demo.rng.choices(users, weights)[0], time, index)
        demo.deliver(time, float("inf"))
        time.advance(WINDOW_SECONDS + 1.0)
        demo.learn()


@click.command("demo", help="Seed a demo experiment: returning users, a context-dependent "
               "best banner, a few minutes of simulated traffic with rewards, a learned model. "
               "Prints keys to read it with (the analyst pages, the reports).")
@click.option("--key", default="demo-banner", show_default=True, help="Experiment key.")
@click.option("--team", default="demo", show_default=True, help="Team (created if missing).")
@click.option("--users", type=click.IntRange(10, 100_000), default=400, show_default=True)
@click.option("--visits", type=click.IntRange(50, 1_000_000), default=2000,
              show_default=True, help="Rank calls.")
@click.option("--minutes", type=click.FloatRange(1, 24 * 60), default=6.0, show_default=True,
              help="Simulated minutes the visits are spread over.")
@click.option("--seed", type=int, default=7, show_default=True)
@with_database()
def demo(key: str, team: str, users: int, visits: int, minutes: float, seed: int) -> None:
    from app import config as settings
    from app import create_app

    # The same database, with model hot reload on every rank: minutes pass in seconds.
    app = create_app({**{name: current_app.config[name] for name in settings.DEFAULTS},
                      "MODEL_CHECK_SECONDS": 0.0})
    rng = random.Random(seed)
    try:
        driver = Demo(app, key, team, rng)
        driver.call("POST", "/v1/experiments", "admin", experiment_body(key))
        simulate(driver, make_users(users, rng), visits, minutes)
        ab = driver.call("GET", f"/v1/experiments/{key}/reports/ab", "analyst")
        driver.call("GET", f"/v1/experiments/{key}/reports/ope?candidates=model:latest,"
                    "uniform", "analyst")  # stored: the page's OPE section shows it
    finally:
        db.dispose(app)
    _summary(driver, key, ab)


def _summary(driver: Demo, key: str, ab: dict[str, Any]) -> None:
    arms = ", ".join(f"{arm} {row['mean'] or 0:.3f} ({row['units']} users, {row['n']} "
                     "decisions)" for arm, row in ab["arms"].items())
    totals = driver.totals
    click.echo("\n".join([
        f"demo experiment {key!r} (team {driver.team!r}): {totals.decisions} decisions, "
        f"{totals.rewards} rewards, {totals.snapshots} model snapshots",
        f"reward per decision: {arms}",
        f"sample ratio mismatch: {ab['srm']['mismatch']}",
        "",
        "Keys for the demo team (shown once):",
        f"  analyst (pages and reports): {driver.keys['analyst']}",
        f"  admin:                       {driver.keys['admin']}",
        f"  client (rank and reward):    {driver.keys['client']}",
        "",
        f"Open /experiments/{key} (sign in with the analyst key), or read "
        f"/v1/experiments/{key}/reports/ab, .../reports/ope, .../reports/health, .../learning."]))
