"""Errors raised by the client."""

from __future__ import annotations

from typing import Any


class TailorError(Exception):
    """Base class of every error this package raises."""


class TailorUnavailable(TailorError):
    """The service could not be reached (or kept answering 429/5xx) within the retries."""


class TailorRequestError(TailorError):
    """The service refused the request (a 4xx other than 429): retrying cannot help.

    Attributes:
        status: the HTTP status.
        code: Tailor's error code (`validation_error`, `not_found`...).
        details: the error's details (e.g. which field).
    """

    def __init__(self, status: int, code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class RewardQueueFull(TailorError):
    """The reward queue is at its bound (the service has been unreachable for a while).

    The reward was NOT queued; nothing is ever dropped silently. Retry later, send it with
    `reward(..., wait=True)`, or raise `max_queue`.
    """
