"""`TailorClient`: rank, reward and activate against a Tailor service, safely retried."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tailor_client.batcher import Rejected, RewardBatcher
from tailor_client.errors import TailorUnavailable
from tailor_client.transport import RetryPolicy, Transport

log = logging.getLogger("tailor_client")

Action = str | Mapping[str, Any]
Fallback = str | Callable[[Mapping[str, Any], Sequence[Action] | None], str]
FALLBACK_MEMORY = 10_000


@dataclass(frozen=True)
class RankResult:
    """What to show.

    Attributes:
        event_id: the decision's id; send rewards for it.
        action_id: the action to show.
        probability: its logged propensity (None for a fallback).
        ranking: every action with its probability, the chosen one first.
        arm: the experiment arm that decided (`"fallback"` for a fallback).
        model_version: the model version that decided, if any.
        fallback: True when the service was unreachable and `fallback_action` answered;
            nothing was logged, and rewards for this event id are not sent.
        warnings: the service's warnings (e.g. a value that looked like personal data).
        policy: the policy that decided (`model:12`, `fixed:hero-1`, `uniform`...).
        deferred: True when ranked with `defer_activation=True` (call `activate`).
        explanation: with `explain=True`, the chosen action's top feature contributions
            (`{"action_id", "features": [{"name", "weight", ...}]}`; None on other arms).
    """

    event_id: str
    action_id: str
    probability: float | None
    ranking: list[tuple[str, float]]
    arm: str
    model_version: int | None = None
    fallback: bool = False
    warnings: list[dict[str, Any]] = field(default_factory=list)
    policy: str | None = None
    deferred: bool = False
    explanation: dict[str, Any] | None = None


def _action_body(action: Action) -> dict[str, Any]:
    if isinstance(action, str):
        return {"id": action}
    return dict(action)


class TailorClient:
    """A client of one experiment.

    Args:
        base_url: e.g. `http://tailor.internal:8000`.
        api_key: a key with the `client` scope.
        experiment: the experiment key.
        timeout: seconds per HTTP attempt.
        retries: extra attempts for rank and activate (rewards retry until delivered).
        rank_deadline: rank gives up (fallback) after this many seconds in all.
        fallback_action: answer when the service is unreachable: an action id, or a
            function `(context, actions) -> action id`. Without one, rank raises
            `TailorUnavailable`.
        batch_size, flush_interval, max_queue: the reward batcher's settings.
        on_rejected: called with `(reward, error)` for a reward the service refused for
            good (unknown event id, bad type...); such rewards are also logged.

    Use it as a context manager, or call `close()`, so queued rewards are flushed.
    """

    def __init__(self, base_url: str, api_key: str, experiment: str, *,
                 timeout: float = 2.0, retries: int = 2, rank_deadline: float = 5.0,
                 fallback_action: Fallback | None = None, batch_size: int = 100,
                 flush_interval: float = 1.0, max_queue: int = 10_000,
                 backoff: float = 0.1, max_backoff: float = 10.0,
                 on_rejected: Rejected | None = None) -> None:
        self.experiment = experiment
        self.fallback_action = fallback_action
        self.rank_deadline = rank_deadline
        self._policy = RetryPolicy(retries=retries, backoff=backoff,
                                   max_backoff=min(max_backoff, 2.0))
        self._transport = Transport(base_url, api_key, timeout)
        self._fallbacks: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._batcher = RewardBatcher(
            self._transport, f"/v1/experiments/{quote(experiment, safe='')}/rewards",
            batch_size=batch_size, interval=flush_interval, max_queue=max_queue,
            max_backoff=max_backoff, on_rejected=on_rejected)

    # ---- rank ------------------------------------------------------------------------------

    def rank(self, context: Mapping[str, Any] | None = None,
             actions: Sequence[Action] | None = None, event_id: str | None = None, *,
             unit_id: str | None = None, excluded_actions: Sequence[str] | None = None,
             defer_activation: bool = False, explain: bool = False) -> RankResult:
        """Choose an action. Retries reuse the same event id, so the service logs it once.

        `actions` are ids or `{"id", "features"}` objects; omit them to use the
        experiment's catalog.
        """
        context = dict(context or {})
        event_id = event_id or uuid.uuid4().hex  # chosen before the first try
        body: dict[str, Any] = {"context": context, "event_id": event_id}
        if actions is not None:
            body["actions"] = [_action_body(a) for a in actions]
        if unit_id is not None:
            body["unit_id"] = unit_id
        if excluded_actions:
            body["excluded_actions"] = list(excluded_actions)
        if defer_activation:
            body["defer_activation"] = True
        if explain:
            body["explain"] = True
        path = f"/v1/experiments/{quote(self.experiment, safe='')}/rank"
        try:
            answer = self._transport.request("POST", path, body, self._policy,
                                             deadline=time.monotonic() + self.rank_deadline)
        except TailorUnavailable as exc:
            return self._fallback(context, actions, event_id, exc)
        return RankResult(
            event_id=answer["event_id"], action_id=answer["action_id"],
            probability=answer.get("probability"),
            ranking=[(r["id"], r["probability"]) for r in answer.get("ranking", [])],
            arm=answer.get("arm", ""), model_version=answer.get("model_version"),
            warnings=list(answer.get("warnings") or []), policy=answer.get("policy"),
            deferred=bool(answer.get("deferred")), explanation=answer.get("explanation"))

    def _fallback(self, context: Mapping[str, Any], actions: Sequence[Action] | None,
                  event_id: str, exc: TailorUnavailable) -> RankResult:
        if self.fallback_action is None:
            raise exc
        chosen = self.fallback_action if isinstance(self.fallback_action, str) \
            else self.fallback_action(context, actions)
        log.warning("Tailor unreachable (%s); rank of event %s answered with the fallback "
                    "action %r (fallback=True, not logged)", exc, event_id, chosen)
        with self._lock:
            self._fallbacks[event_id] = None
            while len(self._fallbacks) > FALLBACK_MEMORY:
                self._fallbacks.popitem(last=False)
        return RankResult(event_id=event_id, action_id=chosen, probability=None,
                          ranking=[(chosen, 1.0)], arm="fallback", fallback=True)

    # ---- rewards -----------------------------------------------------------------------------

    def reward(self, event_id: str, value: float | None = None, type: str = "reward", *,
               idempotency_key: str | None = None, wait: bool = False) -> str:
        """Report a reward; returns its idempotency key.

        By default the reward is queued and sent in the background (batched, retried
        until the service acknowledges it). With `wait=True` it is sent now (retried
        `retries` times) and errors are raised. Rewards for fallback results are not
        sent: the service never logged those decisions.

        Raises:
            RewardQueueFull: the queue is at `max_queue`; the reward was not queued.
        """
        key = idempotency_key or uuid.uuid4().hex  # chosen before the first try
        with self._lock:
            if event_id in self._fallbacks:
                log.info("reward for event %s not sent: that rank was a fallback", event_id)
                return key
        item: dict[str, Any] = {"event_id": event_id, "type": type, "idempotency_key": key}
        if value is not None:
            item["value"] = value
        if wait:
            single = {k: v for k, v in item.items() if k != "event_id"}
            self._transport.request("POST", f"/v1/events/{quote(event_id, safe='')}/rewards",
                                    single, self._policy)
        else:
            self._batcher.put(item)
        return key

    def activate(self, event_id: str) -> None:
        """Activate a decision ranked with `defer_activation=True` (retried, idempotent)."""
        self._transport.request("POST", f"/v1/events/{quote(event_id, safe='')}/activate",
                                None, self._policy)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued rewards are acknowledged; False if `timeout` ran out first."""
        return self._batcher.flush(timeout)

    def pending_rewards(self) -> list[dict[str, Any]]:
        """Queued rewards the service has not acknowledged yet (e.g. to persist at exit)."""
        return self._batcher.pending()

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush queued rewards (up to `timeout`) and stop the background thread."""
        delivered = self._batcher.close(timeout)
        self._transport.close()
        return delivered

    def __enter__(self) -> TailorClient:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
