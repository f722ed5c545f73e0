"""The one place where failures become the JSON error shape of API.md."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from experiments import errors as domain

log = logging.getLogger("tailor")

_DOMAIN_STATUS = {
    domain.ValidationFailed: 400,
    domain.Unauthorized: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.TooLarge: 413,
    domain.Unprocessable: 422,
}

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
    500: "internal_error", 503: "unavailable",
}


class ConfigError(ValueError):
    """A setting (`TAILOR_*`, `DATABASE_URL`) whose value Tailor cannot use; the message
    names the variable and what it takes. The CLI prints it as one `Error:` line."""


class APIError(Exception):
    """An HTTP error raised by the web layer itself (auth, parsing, limits)."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def error_body(code: str, message: str,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """API.md's error shape: `details` always there (a list, empty when no field is to
    blame), so a client may read `error["details"]` without checking first."""
    return {"error": {"code": code, "message": message, "details": details or []}}


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@dataclass(frozen=True)
class Failure:
    """What a failure answers: status, the body's fields, headers."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
    headers: dict[str, str] | None = None


def failure(exc: BaseException, max_content_length: int | None = None) -> Failure | None:
    """The answer to `exc` (None: unexpected, a 500 to log). The one mapping of failures
    to statuses, shared by Flask's error handlers and the hot path (app.hot)."""
    if isinstance(exc, APIError):
        return Failure(exc.status, exc.code, exc.message, exc.details, exc.headers)
    if isinstance(exc, domain.DomainError):
        status = next(s for cls, s in _DOMAIN_STATUS.items() if isinstance(exc, cls))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return Failure(status, exc.code, exc.message, exc.details, headers)
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = f"request body larger than {max_content_length} bytes"
        return Failure(status, _HTTP_CODES.get(status, "error"), message)
    if isinstance(exc, DBAPIError):
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", exc.orig)
            return Failure(503, "unavailable", "database unavailable; retry",
                           headers={"Retry-After": "1"})
        if isinstance(exc, DataError):
            return Failure(400, "invalid_value", _refused_value(exc.orig))
    return None


def _refused_value(orig: BaseException | None) -> str:
    """What the database refused in a value the client sent: a NUL in text (psycopg says
    so itself, before sending), else the database's own first line (e.g. PostgreSQL's
    "value out of range: overflow"), which names no table nor column."""
    first = (str(orig or "").strip().splitlines() or [""])[0]
    if "NUL" in first:
        return "a value cannot be stored: strings must not contain NUL (\\u0000) characters"
    return "a value cannot be stored or computed" + (f": {first}" if first else "")


def _rollback() -> None:
    from flask import g

    db_session = g.get("db_session")
    if db_session is not None:
        db_session.rollback()


def _on_error(exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        _rollback()
    found = failure(exc, request.max_content_length)
    if found is None:
        return _on_unexpected(exc)
    return error_response(found.status, found.code, found.message, found.details,
                          found.headers)


def _on_unexpected(exc: Exception) -> Response:
    _rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal error")


def init_app(app: Flask) -> None:
    for kind in (APIError, domain.DomainError, HTTPException, DBAPIError, Exception):
        app.register_error_handler(kind, _on_error)
