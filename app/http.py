"""Request parsing helpers shared by the blueprints."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Flask, Response, current_app, request

from app.errors import APIError
from experiments import clock
from experiments.command_fields import body_field_names
from experiments.errors import ValidationFailed
from experiments.limits import MAX_DEPTH, ContextLimits, check_depth, text_deeper_than, too_deep


def json_body() -> Any:
    """The parsed JSON body (`parse_json`), or a 415 if it is not sent as JSON."""
    if not request.is_json:
        raise APIError(415, "unsupported_media_type",
                       "send a JSON body with Content-Type: application/json")
    return parse_json(request.get_data(cache=True))


def parse_json(data: bytes) -> Any:
    """The parsed JSON body, or a 400 that says why it is not one: not JSON, or nested
    deeper than `experiments.limits.MAX_DEPTH` (then every recursive walk of the body stays
    far from Python's recursion limit).

    orjson parses what is strict JSON, without recursing in Python (it refuses more than
    1,024 levels itself). What it refuses is parsed again by the standard library as Flask
    would (it also takes NaN and Infinity, which validation then refuses naming the
    field, and UTF-16/32), but only once the text is known to be shallow: that parser
    recurses per level."""
    shallow = data.count(b"{") + data.count(b"[") <= MAX_DEPTH  # else it may be deeper
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        if not shallow and text_deeper_than(data):
            raise too_deep() from None
        return _lenient(data)
    if not shallow:
        check_depth(parsed)
    return parsed


def _lenient(data: bytes) -> Any:
    try:
        parsed = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8/16/32 text
        raise APIError(400, "invalid_json", "the body is not valid JSON") from None
    _refuse_lone_surrogates(parsed)
    return parsed


def _refuse_lone_surrogates(value: Any) -> None:
    """JSON may escape half of a UTF-16 pair ("\\ud800"), which the standard library
    decodes into a str that is not Unicode text: it cannot be encoded, hashed or stored
    (a 500 at the PII guard, before this). orjson refuses such text; here it gets the
    same 400. Only the lenient path walks (the body is at most MAX_DEPTH deep)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode()
            except UnicodeEncodeError:
                raise APIError(400, "invalid_json", "the body is not valid JSON: a string "
                               "holds a lone UTF-16 surrogate (\\ud800-\\udfff escaped "
                               "alone), which is not Unicode text") from None


def command_body(command: type) -> dict[str, Any]:
    """The JSON body: an object whose fields are all body fields of `command` (a frozen
    command record, `experiments.command_fields`), so the fields the API accepts are the
    command's by construction. Anything else is a 400 naming the field; the values are the
    service's to check."""
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    for field in sorted(set(body) - body_field_names(command)):
        raise ValidationFailed.field(field, "unknown field")
    return body


def context_limits() -> ContextLimits:
    """This app's size limits of a context (TAILOR_MAX_*_FEATURES, TAILOR_MAX_STRING_LENGTH)."""
    return context_limits_of(current_app)


def context_limits_of(app: Flask) -> ContextLimits:
    found = app.extensions.get("tailor.context_limits")
    if found is None:
        config = app.config
        found = ContextLimits(config["MAX_NAMESPACE_FEATURES"], config["MAX_CONTEXT_FEATURES"],
                              config["MAX_STRING_LENGTH"])
        app.extensions["tailor.context_limits"] = found
    return found


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


def query_time(raw: str | None, field: str, default: float) -> float:
    """An optional ISO 8601 query-string value as epoch seconds (`default` when absent)."""
    if not raw:
        return default
    try:
        return clock.parse_iso(raw)
    except ValueError:
        raise ValidationFailed.field(field, f"{raw!r} is not an ISO 8601 date-time") from None


def no_type_on_204(response: Response) -> Response:
    """After every request: a 204 has no body, so it has no Content-Type either (Flask
    gives every response `text/html` unless told otherwise)."""
    if response.status_code == 204:
        response.headers.pop("Content-Type", None)
    return response
