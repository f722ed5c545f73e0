"""Errors in Personalizer's shape, for every path under `/personalizer`.

Personalizer answered `{"error": {"code", "message", "target", "details", "innerError"}}`
(its `ErrorResponse`/`PersonalizerError` definitions) with an `x-ms-error-code` header. The
codes are its own (`InvalidRankRequest`, `InvalidRewardRequest`, `InvalidServiceConfiguration`,
`ResourceNotFound`...; the REST specification lists them); Tailor's own code is kept in
`innerError.code`. `target` names the offending field in the request's own (camelCase)
vocabulary.

Errors raised inside a view are rendered by the blueprint's handlers; what never reached a
view (an unknown route or method, a body too large, a database outage) is converted on its
way out (`convert_response`), so no path under the prefix answers in another shape.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, jsonify, request
from werkzeug.exceptions import HTTPException

from app.errors import APIError, _rollback
from app.personalizer.routes import bp, current_route, is_personalizer_path
from experiments import errors as domain

HEADER = "x-ms-error-code"
# Status → code where no more specific one applies (codes of the specification's enum where
# it has one; Azure's gateway's words for authentication and throttling).
STATUS_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden",
                404: "ResourceNotFound", 405: "OperationNotAllowed", 409: "Conflict",
                413: "PayloadSizeExceeded", 415: "BadRequest", 429: "TooManyRequests",
                500: "InternalServerError", 503: "ServiceUnavailable"}


class PersonalizerError(Exception):
    """An error with Personalizer's status and code, raised by the adapter's views."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 details: list[dict[str, Any]] | None = None, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.target, self.details, self.inner = target, details or [], inner
        self.headers = headers or {}

    @classmethod
    def invalid(cls, target: str, message: str, code: str | None = None) -> PersonalizerError:
        """400 for one field of the request (code: the current view's `invalid` code)."""
        code = code or _invalid_code()
        return cls(400, code, f"{target}: {message}", target=target,
                   details=[{"code": code, "message": message, "target": target}],
                   inner="validation_error")


def _invalid_code() -> str:
    info = current_route()
    return info.invalid if info is not None else "BadRequest"


def render(error: PersonalizerError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message,
                            "target": error.target, "details": error.details,
                            "innerError": {"code": error.inner or error.code}}
    response = jsonify({"error": body})
    response.status_code = error.status
    response.headers[HEADER] = error.code
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _details(items: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [{"code": code, "message": str(d.get("message", "")),
             "target": d.get("field") or d.get("target")} for d in items]


def from_domain(exc: domain.DomainError) -> PersonalizerError:
    """A domain failure as Personalizer reported its kind of failure."""
    if isinstance(exc, domain.NotFound):
        return PersonalizerError(404, "ResourceNotFound", exc.message, inner=exc.code)
    if isinstance(exc, domain.Unauthorized):
        return PersonalizerError(401, "Unauthorized", exc.message, inner=exc.code)
    if isinstance(exc, domain.Forbidden):
        return PersonalizerError(403, "Forbidden", exc.message, inner=exc.code)
    if isinstance(exc, domain.Conflict):
        return PersonalizerError(409, "Conflict", exc.message, inner=exc.code)
    if isinstance(exc, domain.TooLarge):
        details = _details(exc.details, STATUS_CODES[413])
        return PersonalizerError(413, STATUS_CODES[413], exc.message, inner=exc.code,
                                 target=details[0]["target"] if details else None,
                                 details=details)
    # ValidationFailed and Unprocessable: Personalizer answered 400 with the operation's code.
    code = _invalid_code()
    details = _details(exc.details, code)
    target = details[0]["target"] if details else None
    return PersonalizerError(400, code, exc.message, target=target, details=details,
                             inner=exc.code)


def from_api(exc: APIError) -> PersonalizerError:
    code = STATUS_CODES.get(exc.status, "BadRequest")
    if exc.status == 400:
        code = _invalid_code()
    return PersonalizerError(exc.status, code, exc.message, inner=exc.code,
                             headers=exc.headers)


@bp.errorhandler(PersonalizerError)
def _on_personalizer_error(exc: PersonalizerError) -> Response:
    _rollback()
    return render(exc)


@bp.errorhandler(domain.DomainError)
def _on_domain_error(exc: domain.DomainError) -> Response:
    _rollback()
    return render(from_domain(exc))


@bp.errorhandler(APIError)
def _on_api_error(exc: APIError) -> Response:
    _rollback()
    return render(from_api(exc))


@bp.errorhandler(HTTPException)
def _on_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = exc.description or exc.name
    if status == 413:
        message = f"request body larger than {request.max_content_length} bytes"
    return render(PersonalizerError(status, STATUS_CODES.get(status, "BadRequest"), message))


def convert_response(response: Response) -> Response:
    """An error answered outside the views (routing, size, outage) in Personalizer's shape."""
    if response.status_code < 400 or HEADER in response.headers \
            or not is_personalizer_path(request.path):
        return response
    error = (response.get_json(silent=True) or {}).get("error") or {} \
        if response.is_json else {}
    status = response.status_code
    code = STATUS_CODES.get(status, "InternalServerError")
    message = error.get("message") or _default_message(status)
    converted = PersonalizerError(status, code, message,
                                  details=_details(error.get("details") or [], code),
                                  inner=error.get("code"))
    response.set_data(json.dumps({"error": {
        "code": converted.code, "message": converted.message, "target": None,
        "details": converted.details, "innerError": {"code": converted.inner or code}}}))
    response.mimetype = "application/json"
    response.headers[HEADER] = code
    return response


def _default_message(status: int) -> str:
    if status == 404:
        return f"no Personalizer operation at {request.path}"
    if status == 405:
        return f"{request.method} is not an operation of {request.path}"
    return "request failed"


def init_app(app: Flask) -> None:
    app.after_request(convert_response)
