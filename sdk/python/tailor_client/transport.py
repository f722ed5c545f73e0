"""HTTP with retries: the same request (same event id, same idempotency key) is re-sent on
connection errors, timeouts, 429 (after its Retry-After) and 5xx, with exponential backoff
and jitter. Anything else is final."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from tailor_client.errors import TailorRequestError, TailorUnavailable

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attributes:
        retries: extra attempts after the first (0 = try once).
        backoff: first pause in seconds; doubles each attempt, with full jitter.
        max_backoff: the longest pause between two attempts.
        max_retry_after: the longest Retry-After (429/503) honoured; longer ones give up.
    """

    retries: int = 2
    backoff: float = 0.1
    max_backoff: float = 2.0
    max_retry_after: float = 30.0

    def pause(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt))


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_of(response: requests.Response) -> dict[str, Any] | None:
    """A success's JSON object (empty for a body-less answer); None if it is not one."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_of(response: requests.Response) -> TailorRequestError:
    """Tailor's error, or, for an answer in another shape (a proxy's or gateway's own
    error page), the status with code `error`: always a TailorRequestError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = error if isinstance(error, str) else response.text[:200]
        return TailorRequestError(response.status_code, "error", text or str(response.reason))
    details = error.get("details")
    return TailorRequestError(response.status_code, str(error.get("code", "error")),
                              str(error.get("message", response.reason)),
                              details if isinstance(details, list) else None)


class Transport:
    """One base URL and key; a `requests.Session` per thread."""

    def __init__(self, base_url: str, api_key: str, timeout: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}",
                        "User-Agent": "tailor-client-python/0.1"}
        self.timeout = timeout
        self._local = threading.local()
        self._sleep = sleep
        self._rng = random.Random()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, path: str, body: dict[str, Any] | None,
                policy: RetryPolicy, deadline: float | None = None) -> dict[str, Any]:
        """The JSON answer (empty for 204). Raises TailorRequestError or TailorUnavailable."""
        last = "no attempt"
        for attempt in range(policy.retries + 1):
            wait: float | None = None
            timeout = self.timeout
            if deadline is not None:  # no attempt outlives the caller's deadline
                timeout = min(timeout, max(deadline - time.monotonic(), 0.001))
            try:
                response = self._session().request(
                    method, self.base_url + path, json=body, headers=self.headers,
                    timeout=timeout)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    answer = _json_of(response)
                    if answer is not None:
                        return answer
                    # Not Tailor answering (a proxy, a captive portal): retried, as a 502.
                    last = f"HTTP {response.status_code} with a body that is not JSON"
                elif response.status_code not in RETRY_STATUSES:
                    raise _error_of(response)
                else:
                    last = f"HTTP {response.status_code}"
                    wait = retry_after(response)
                    if wait is not None and wait > policy.max_retry_after:
                        break
            if attempt == policy.retries:
                break
            pause = policy.pause(attempt, self._rng) if wait is None else wait
            if deadline is not None and time.monotonic() + pause > deadline:
                break
            self._sleep(pause)
        raise TailorUnavailable(f"{method} {path} failed after {attempt + 1} attempt(s): {last}")

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
