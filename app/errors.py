"""The one place where failures become the JSON error shape of API.md."""

from __future__ import annotations

import logging
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


class APIError(Exception):
    """An HTTP error raised by the web layer itself (auth, parsing, limits)."""

    def __init__(self, status: int, code: str, message: str,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _rollback() -> None:
    from flask import g

    db_session = g.get("db_session")
    if db_session is not None:
        db_session.rollback()


def _on_api_error(exc: APIError) -> Response:
    _rollback()
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _on_domain_error(exc: domain.DomainError) -> Response:
    _rollback()
    status = next(s for cls, s in _DOMAIN_STATUS.items() if isinstance(exc, cls))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _on_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 413:
        limit = request.max_content_length
        message = f"request body larger than {limit} bytes"
    return error_response(status, _HTTP_CODES.get(status, "error"), message)


def _on_database_down(exc: DBAPIError) -> Response:
    _rollback()
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        log.warning("database unavailable: %s", exc.orig)
        return error_response(503, "unavailable", "database unavailable; retry",
                              headers={"Retry-After": "1"})
    if isinstance(exc, DataError):
        # The database refused a value the client sent (PostgreSQL: a NUL character in text).
        return error_response(400, "invalid_value", "a value cannot be stored: strings "
                              "must not contain NUL (\\u0000) characters")
    return _on_unexpected(exc)


def _on_unexpected(exc: Exception) -> Response:
    _rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal error")


def init_app(app: Flask) -> None:
    app.register_error_handler(APIError, _on_api_error)
    app.register_error_handler(domain.DomainError, _on_domain_error)
    app.register_error_handler(HTTPException, _on_http_exception)
    app.register_error_handler(DBAPIError, _on_database_down)
    app.register_error_handler(Exception, _on_unexpected)
