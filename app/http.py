"""Request parsing helpers shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.errors import APIError


def json_body() -> Any:
    """The parsed JSON body, or a 400 that says why it is not one."""
    if not request.is_json:
        raise APIError(415, "unsupported_media_type",
                       "send a JSON body with Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise APIError(400, "invalid_json", "the body is not valid JSON")
    return data


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise APIError(400, "validation_error", f"{name} must be an integer",
                       [{"field": name, "message": "must be an integer"}]) from None
    if not low <= value <= high:
        raise APIError(400, "validation_error", f"{name} must be between {low} and {high}",
                       [{"field": name, "message": f"must be between {low} and {high}"}])
    return value


def no_type_on_204(response: Response) -> Response:
    """After every request: a 204 has no body, so it has no Content-Type either (Flask
    gives every response `text/html` unless told otherwise)."""
    if response.status_code == 204:
        response.headers.pop("Content-Type", None)
    return response
