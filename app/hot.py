"""The hot path: POST /v1/experiments/<key>/rank and POST /v1/events/<id>/rewards, served
by a thin WSGI layer in front of Flask's request machinery.

Flask's request context, routing, cookie session, per-request ORM session and hooks cost
more CPU than a rank's own work apart from its write (bench/rank_cpu.py): these two
routes are answered here instead, by the same app with the same services
(experiments.services), key cache, rate limiter, error shape (app.errors.failure), PII
defaults and metrics. It is *the* route: `create_app` puts it in front of every request,
and the Flask views of the same rules (app/api/rank.py, rewards.py) only declare them
(routing table, OpenAPI, 405 for other methods) and answer through `serve` too when
reached without this layer.

Everything else (other paths, other methods) goes to Flask untouched.
"""

from __future__ import annotations

import http
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import orjson
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app import auth, errors, metrics
from app.errors import APIError
from app.http import parse_json
from app.ratelimit import RateLimiter
from experiments import pii, rank_commands, rewards
from experiments.keys import KeyCache, Principal
from experiments.services import Caller, OnDemandSession, RankService, RewardService

log = logging.getLogger("tailor")
SERVICES = "tailor.hot"
_ROUTES = (
    # (pattern of PATH_INFO, Flask rule (the metrics' endpoint label), endpoint, limit kind)
    (re.compile(r"/v1/experiments/([^/]+)/rank"), "/v1/experiments/<key>/rank", "api.rank",
     "rank"),
    (re.compile(r"/v1/events/([^/]+)/rewards"), "/v1/events/<event_id>/rewards",
     "api.reward", "reward"),
)
_STATUS = {code.value: f"{code.value} {code.phrase}" for code in http.HTTPStatus}
Handler = Callable[["HotPath", Principal, str, bytes], "tuple[int, Any]"]


class HotPath:
    """WSGI middleware: the two hot routes here, every other request to `inner`."""

    def __init__(self, app: Flask, inner: Callable[..., Iterable[bytes]],
                 ranks: RankService, reward_service: RewardService) -> None:
        self.inner = inner
        self.ranks = ranks
        self.rewards = reward_service
        # Read per request, not kept: tests replace entries of a built app.
        self.extensions = app.extensions
        self.config = app.config
        self.handlers: dict[str, Handler] = {"api.rank": rank, "api.reward": reward}

    def key_cache(self) -> KeyCache:
        return self.extensions["tailor.key_cache"]  # type: ignore[no-any-return]

    def limiter(self) -> RateLimiter:
        return self.extensions["tailor.ratelimit"]  # type: ignore[no-any-return]

    def max_content_length(self) -> int | None:
        return self.config.get("MAX_CONTENT_LENGTH")

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            path = _path_info(environ)
            for pattern, rule, endpoint, kind in _ROUTES:
                match = pattern.fullmatch(path)
                if match is not None:
                    return self._serve(environ, start_response, match.group(1), rule,
                                       endpoint, kind)
        return self.inner(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any],
               argument: str, rule: str, endpoint: str, kind: str) -> Iterable[bytes]:
        started = time.perf_counter()
        status, headers, body = self.answer(environ, argument, endpoint, kind)
        metrics.observe_request("POST", rule, status, time.perf_counter() - started)
        start_response(_STATUS.get(status, str(status)), [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            *headers.items()])
        return [body]

    def answer(self, environ: dict[str, Any], argument: str, endpoint: str,
               kind: str) -> tuple[int, dict[str, str], bytes]:
        """(status, extra headers, JSON body) of one hot request."""
        token = pii.use_default_fields(self.extensions["tailor.pii_defaults"])
        try:
            principal = self.authorize(environ, kind)
            status, result = self.handlers[endpoint](self, principal, argument,
                                                     self.body(environ))
            return status, {}, encode(result)
        except Exception as exc:  # noqa: BLE001 - every failure answers API.md's shape
            return self.render(exc, environ)
        finally:
            pii.reset_default_fields(token)

    def authorize(self, environ: dict[str, Any], kind: str) -> Principal:
        """The caller's principal (cached key), checked for the client scope and the
        key's rate limit of `kind` (as app.auth.requires("client", cached=True))."""
        plain = auth.key_of(environ.get("HTTP_AUTHORIZATION", ""),
                            environ.get("HTTP_OCP_APIM_SUBSCRIPTION_KEY"))
        if not plain:
            raise auth.missing_key()
        reads = OnDemandSession(self.ranks.sessions)
        try:
            principal = self.key_cache().authenticate(reads, plain)  # type: ignore[arg-type]
        finally:
            reads.close()
        if principal is None:
            raise auth.unknown_key()
        auth.check_scope(principal, "client")
        self.check_rate(principal, kind)
        return principal

    def check_rate(self, principal: Principal, kind: str) -> None:
        auth.take_token(self.limiter(), principal, kind)

    def body(self, environ: dict[str, Any]) -> bytes:
        """The request's body: JSON only, at most MAX_CONTENT_LENGTH bytes (as Werkzeug
        reads it: no Content-Length and no terminated input is an empty body)."""
        if not _is_json(environ.get("CONTENT_TYPE", "")):
            raise APIError(415, "unsupported_media_type",
                           "send a JSON body with Content-Type: application/json")
        limit = self.max_content_length()
        try:
            length: int | None = max(0, int(environ.get("CONTENT_LENGTH") or ""))
        except ValueError:
            length = None
        stream = environ["wsgi.input"]
        if length is None:
            if not environ.get("wsgi.input_terminated"):
                return b""
            data = stream.read() if limit is None else stream.read(limit + 1)
        else:
            if limit is not None and length > limit:
                raise RequestEntityTooLarge()
            data = stream.read(length) if length else b""
        if limit is not None and len(data) > limit:
            raise RequestEntityTooLarge()
        return data

    def render(self, exc: Exception, environ: dict[str, Any]) -> tuple[int, dict[str, str],
                                                                        bytes]:
        found = errors.failure(exc, self.max_content_length())
        if found is None:
            log.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"),
                          _path_info(environ))
            found = errors.Failure(500, "internal_error", "internal error")
        return found.status, dict(found.headers or {}), orjson.dumps(
            errors.error_body(found.code, found.message, found.details))


def encode(result: Any) -> bytes:
    """An answer's JSON (orjson: a fifth of jsonify's CPU)."""
    return orjson.dumps(result)


# The shape of every rank body that can be valid, as msgspec types: a body of this shape
# is at most 6 levels deep, so decoding it through them replaces check_depth's walk of
# every value (~20 µs) by msgspec's own checks (~5 µs for the whole decode). Any other
# body (wrong, deeper, NaN...) is decoded again by `app.http.parse_json`, so that it gets
# exactly the answer it got before (parse_request names what is wrong).
_Scalar = str | int | float | bool | None
_Namespace = dict[str, _Scalar | list[_Scalar]]
_Features = dict[str, _Scalar | list[_Scalar] | _Namespace]
_Action = dict[str, _Scalar | list[_Scalar] | _Features]
_RANK_BODY = msgspec.json.Decoder(dict[str, _Scalar | list[_Scalar | _Action] | _Features])


def rank_json(data: bytes) -> Any:
    """A rank body's JSON: `app.http.parse_json`, fast for the shape of a valid one."""
    try:
        return _RANK_BODY.decode(data)
    except msgspec.DecodeError:  # ValidationError included
        return parse_json(data)


def caller(principal: Principal) -> Caller:
    return Caller(principal.team_id, principal.pii_salt, principal.key_id)


def rank(hot: HotPath, principal: Principal, key: str, data: bytes) -> tuple[int, Any]:
    body = rank_json(data)

    def parse(types: Any, max_actions: int, limits: Any) -> rank_commands.RankCommand:
        return rank_commands.parse_request(body, max_actions, limits, types)

    result = hot.ranks.rank(caller(principal), key, parse)
    metrics.count_decision(principal.team_name, key, result["arm"])
    return 200, result


def reward(hot: HotPath, principal: Principal, event_id: str, data: bytes) -> tuple[int, Any]:
    item = rewards.parse_reward(parse_json(data), event_id)
    outcome = hot.rewards.record(caller(principal), item)
    metrics.count_rewards(outcome)
    return (200 if outcome == "duplicate" else 202), {"event_id": event_id,
                                                      "status": outcome}


def _path_info(environ: dict[str, Any]) -> str:
    # WSGI hands the path over as latin-1 text of its bytes; Werkzeug decodes it as UTF-8.
    raw = environ.get("PATH_INFO") or ""
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


def _is_json(content_type: str) -> bool:
    """Werkzeug's `Request.is_json`: application/json or application/*+json."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/")
                                              and mimetype.endswith("+json"))


def init_app(app: Flask, ranks: RankService, reward_service: RewardService) -> None:
    """Put the hot path in front of the app's WSGI callable."""
    hot = HotPath(app, app.wsgi_app, ranks, reward_service)
    app.extensions[SERVICES] = hot
    app.wsgi_app = hot  # type: ignore[method-assign]


def through_flask(endpoint: str, argument: str) -> Response:
    """Answer a hot route reached through Flask (the app's WSGI callable bypassed, e.g.
    by a middleware wrapping `app.wsgi_app` before `init_app` ran) exactly as the hot
    path does."""
    hot: HotPath = current_app.extensions[SERVICES]
    kind = "rank" if endpoint == "api.rank" else "reward"
    status, headers, body = hot.answer(request.environ, argument, endpoint, kind)
    return Response(body, status, headers, content_type="application/json")
