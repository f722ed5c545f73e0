"""A background thread that sends queued rewards in batches.

Rewards wait in a bounded in-memory queue and leave it only when the service has
acknowledged them (accepted, duplicate, or refused for good with a reason, which is logged
and passed to `on_rejected`). While the service is down the batch is kept and retried with
backoff; a full queue refuses new rewards with `RewardQueueFull` instead of dropping any.
Every reward carries an idempotency key chosen when it was queued, so a batch re-sent after
a lost answer is counted once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tailor_client.errors import RewardQueueFull, TailorError, TailorRequestError
from tailor_client.transport import RetryPolicy, Transport

log = logging.getLogger("tailor_client")

Rejected = Callable[[dict[str, Any], dict[str, Any]], None]


class RewardBatcher:
    """Queue rewards; a daemon thread flushes every `interval` s or `batch_size` items."""

    def __init__(self, transport: Transport, path: str, *, batch_size: int = 100,
                 interval: float = 1.0, max_queue: int = 10_000,
                 max_backoff: float = 10.0, on_rejected: Rejected | None = None) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        self._transport, self._path = transport, path
        self.batch_size, self.interval, self.max_queue = batch_size, interval, max_queue
        self._max_backoff = max_backoff
        self._on_rejected = on_rejected
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._flush_wanted = False
        self._failures = 0
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="tailor-rewards", daemon=True)
        self._thread.start()

    def put(self, item: dict[str, Any]) -> None:
        with self._cond:
            if self._closing:
                raise TailorError("the client is closed")
            if len(self._queue) >= self.max_queue:
                log.error("reward queue full (%d); reward for event %s NOT queued",
                          self.max_queue, item.get("event_id"))
                raise RewardQueueFull(f"{self.max_queue} rewards are waiting for the service")
            self._queue.append(item)
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def pending(self) -> list[dict[str, Any]]:
        """Rewards not yet acknowledged by the service (a copy, oldest first)."""
        with self._cond:
            return list(self._queue)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued reward is acknowledged; False if `timeout` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_wanted = True
            self._cond.notify_all()
            while self._queue:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 0.5)
            return True

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush (up to `timeout`), then stop the thread. Logs what could not be sent."""
        delivered = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)
        if not delivered:
            log.error("%d reward(s) could not be delivered before close; get them with "
                      "pending_rewards() and send them later", len(self._queue))
        return delivered

    # ---- the thread ----------------------------------------------------------------------

    def _next_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            deadline = time.monotonic() + self._pause()
            while not self._closing:
                ready = len(self._queue) >= self.batch_size or self._flush_wanted
                left = deadline - time.monotonic()
                # After a failure the backoff holds even for a flush or a full batch.
                if self._queue and (left <= 0 or (ready and not self._failures)):
                    break
                if not self._queue:
                    self._flush_wanted = False
                    deadline = time.monotonic() + self.interval
                    left = self.interval
                self._cond.wait(max(left, 0.01))
            if self._closing:
                return None
            return [self._queue[i] for i in range(min(self.batch_size, len(self._queue)))]

    def _pause(self) -> float:
        if not self._failures:
            return self.interval
        ceiling = min(self._max_backoff, 0.2 * 2 ** min(self._failures, 16))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                answer = self._transport.request("POST", self._path, {"rewards": batch},
                                                 RetryPolicy(retries=0))
            except TailorRequestError as exc:
                self._refused_whole_batch(batch, exc)
            except TailorError as exc:
                self._failures += 1
                log.warning("reward batch of %d not delivered (%s); will retry", len(batch),
                            exc)
                continue
            else:
                self._acknowledged(batch, answer)
            self._failures = 0

    def _acknowledged(self, batch: list[dict[str, Any]], answer: dict[str, Any]) -> None:
        for rejected in answer.get("rejected") or []:
            index = rejected.get("index")
            if isinstance(index, int) and 0 <= index < len(batch):
                self._reject(batch[index], rejected.get("error") or {})
        self._drop_head(len(batch))

    def _refused_whole_batch(self, batch: list[dict[str, Any]], exc: TailorRequestError) -> None:
        # A 4xx for the whole batch (e.g. the experiment was deleted, the key revoked):
        # retrying cannot help; report every reward rather than loop forever.
        for item in batch:
            self._reject(item, {"code": exc.code, "message": exc.message})
        self._drop_head(len(batch))

    def _reject(self, item: dict[str, Any], error: dict[str, Any]) -> None:
        log.error("reward for event %s refused by the service: %s", item.get("event_id"),
                  error.get("message") or error.get("code"))
        if self._on_rejected is not None:
            try:
                self._on_rejected(item, error)
            except Exception:  # a callback bug must not kill the sender thread
                log.exception("on_rejected callback failed")

    def _drop_head(self, count: int) -> None:
        with self._cond:
            for _ in range(count):
                self._queue.popleft()
            self._cond.notify_all()
