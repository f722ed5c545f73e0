"""Domain exceptions. The service layer raises these; `app.errors` turns them into HTTP."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a machine-readable `code`, a human `message`, optional `details`."""

    code = "error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(DomainError):
    """The request is malformed or breaks a rule; `details` name the offending fields."""

    code = "validation_error"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class TooLarge(DomainError):
    """Over a size limit (413); `details` name the offending field."""

    code = "payload_too_large"

    @classmethod
    def field(cls, field: str, message: str) -> TooLarge:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unauthorized(DomainError):
    """The API key is unknown or revoked (found out after the request began)."""

    code = "unauthorized"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unprocessable(DomainError):
    """Valid JSON, impossible request (e.g. every action excluded)."""

    code = "unprocessable"


class Forbidden(DomainError):
    code = "forbidden"
