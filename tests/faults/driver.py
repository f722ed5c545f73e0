"""A small load driver for fault tests: threads that rank and reward, retrying with the same
event id and idempotency key until acknowledged, and a check of the database afterwards."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import sqlalchemy as sa

from app.db import make_engine

RETRY_STATUSES = {502, 503, 504}
# Clients honour Retry-After, capped so that the test measures the service's recovery
# rather than the clients' back-off.
MAX_BACKOFF = 0.25


@dataclass(frozen=True)
class Attempt:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    retry_after: str | None


@dataclass
class Load:
    """Closed-loop clients: each thread ranks a new event, then rewards it, retrying both."""

    url: str
    key: str
    experiment: str
    threads: int = 8
    prefix: str = "f"
    acked_ranks: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked_rewards: set[str] = field(default_factory=set)
    attempts: list[Attempt] = field(default_factory=list)
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)

    def _run(self, thread: int) -> None:
        http = requests.Session()
        headers = {"Authorization": f"Bearer {self.key}"}
        n = 0
        while not self._stop.is_set():
            n += 1
            event = f"{self.prefix}-{thread}-{n}"
            answer = self._until_ok(http, headers, "rank",
                                    f"/v1/experiments/{self.experiment}/rank",
                                    rank_body(event, n))
            if answer is None:
                break
            self.acked_ranks[event] = answer
            reward = {"type": "click", "idempotency_key": f"r-{event}"}
            if self._until_ok(http, headers, "reward", f"/v1/events/{event}/rewards",
                              reward) is not None:
                self.acked_rewards.add(event)
        http.close()

    def _until_ok(self, http: requests.Session, headers: dict[str, str], kind: str,
                  path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST until a 2xx answer; None if stopped first or refused for good."""
        while not self._stop.is_set():
            started = time.monotonic()
            status, retry_after, answer = _post(http, self.url + path, headers, body)
            self.attempts.append(Attempt(kind, started, time.monotonic(), status,
                                         retry_after))
            if status is not None and 200 <= status < 300:
                return answer
            if status is not None and status not in RETRY_STATUSES:
                self.unexpected.append((kind, status, json.dumps(answer)[:300]))
                if status < 500:
                    return None  # a 4xx for a retry is a bug the check reports
            time.sleep(min(float(retry_after or 0.05), MAX_BACKOFF))
        return None

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.attempts
                   if a.kind == "rank" and a.status == 200 and start <= a.ended < end)


def _post(http: requests.Session, url: str, headers: dict[str, str],
          body: dict[str, Any]) -> tuple[int | None, str | None, Any]:
    try:
        response = http.post(url, json=body, headers=headers, timeout=(3, 15))
    except requests.RequestException:
        return None, None, None
    try:
        answer = response.json()
    except ValueError:
        answer = {"not_json": response.text[:200]}
    return response.status_code, response.headers.get("Retry-After"), answer


def rank_body(event: str, n: int) -> dict[str, Any]:
    """The same payload for every retry of one event."""
    return {"event_id": event, "context": {"user_id": f"u-{n % 97}", "hour": n % 24,
                                           "user": {"segment": ["new", "loyal"][n % 2]}}}


@dataclass(frozen=True)
class Figures:
    requests: int
    acknowledged: int
    found: int
    lost: int
    duplicated: int
    mismatched: int

    def row(self, name: str, extra: str = "") -> str:
        return (f"| {name} | {self.requests} | {self.acknowledged} | {self.found} | "
                f"{self.lost} | {self.duplicated} | {self.mismatched} | {extra} |")


HEADER = ("| scenario | requests | acknowledged | found | lost | duplicated | mismatched | "
          "notes |\n|---|---|---|---|---|---|---|---|")


def check_database(database_url: str, load: Load) -> Figures:
    """Every acknowledged decision and reward is stored exactly once, as acknowledged; each
    stored in-window reward (1.0) is applied to its decision's aggregate exactly once."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        decisions = {row.event_id: row for row in conn.execute(sa.text(
            "SELECT event_id, count(*) OVER (PARTITION BY event_id) AS copies, action_id, "
            "propensity, reward, reward_count FROM decisions WHERE event_id LIKE :p"),
            {"p": f"{load.prefix}-%"})}
        stored: dict[str, list[bool]] = {}
        for key, late in conn.execute(sa.text(
                "SELECT idempotency_key, late FROM reward_events WHERE idempotency_key "
                "LIKE :p"), {"p": f"r-{load.prefix}-%"}):
            stored.setdefault(key[2:], []).append(bool(late))
    engine.dispose()
    found = lost = duplicated = mismatched = 0
    for event, answer in load.acked_ranks.items():
        row = decisions.get(event)
        if row is None:
            lost += 1
            continue
        found += 1
        duplicated += row.copies - 1
        if row.action_id != answer["action_id"] or row.propensity != answer["probability"]:
            mismatched += 1
        # A reward that arrived after the window closed is stored as late and not applied.
        applied = sum(1 for late in stored.get(event, []) if not late)
        duplicated += max(0, row.reward_count - applied)
        mismatched += row.reward_count < applied or (applied and row.reward != 1.0)
    for event in load.acked_rewards:
        copies = len(stored.get(event, []))
        found += copies > 0
        lost += copies == 0
        duplicated += max(0, copies - 1)
    return Figures(requests=len(load.attempts),
                   acknowledged=len(load.acked_ranks) + len(load.acked_rewards),
                   found=found, lost=lost, duplicated=duplicated, mismatched=mismatched)
