"""The Python SDK (sdk/python, `tailor_client`) against the service in process: its requests
go through `requests` into the Flask app on each database (an adapter in place of the
socket), so every public method, every error path and the retries meet the real views,
services and database. Network faults (a lost answer, a timeout) are injected at the
adapter, where they happen in life; the gunicorn round trip is tests/e2e/test_sdk_client.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from tailor_client import TailorClient, TailorRequestError, TailorUnavailable

from tests.integration.helpers import register

BASE = "http://tailor.test"
Fault = Callable[[requests.PreparedRequest, float | None], None]


class FlaskAdapter(BaseAdapter):
    """Sends a prepared request to the Flask app; `before`/`after` may raise a network
    fault before the app sees the request or after it answered (a lost answer)."""

    def __init__(self, app, before: Fault | None = None, after: Fault | None = None):
        super().__init__()
        self.client = app.test_client()
        self.before, self.after = before, after
        self.sent: list[tuple[str, str, bytes | None]] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if self.before:
            self.before(request, timeout)
        path = request.url.removeprefix(BASE)
        self.sent.append((request.method, path, request.body))
        answer = self.client.open(path, method=request.method, data=request.body,
                                  headers=dict(request.headers))
        if self.after:
            self.after(request, timeout)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers.update(answer.headers)
        response._content = answer.get_data()
        response.url, response.request, response.reason = request.url, request, answer.status
        return response

    def close(self):
        pass


def sdk(app, team, adapter: FlaskAdapter | None = None, **options: Any) -> TailorClient:
    adapter = adapter or FlaskAdapter(app)
    client = TailorClient(BASE, team.client, "homepage-hero", backoff=0.001, **options)

    def session() -> requests.Session:  # the transport's per-thread session, on the app
        made = requests.Session()
        made.mount(BASE, adapter)
        return made

    client._transport._session = session  # type: ignore[method-assign]
    client._batcher._transport._session = session  # type: ignore[method-assign]
    return client


def decisions(client, team) -> list[dict[str, Any]]:
    return client.get("/v1/experiments/homepage-hero/decisions",
                      headers=team.auth("analyst")).json["decisions"]


def test_every_public_method_against_the_service(app, client, team):
    register(client, team, arms={"bandit": 1.0})  # explanations come from the bandit arm
    rejected: list[tuple[dict, dict]] = []
    with sdk(app, team, on_rejected=lambda item, error: rejected.append((item, error))) as tc:
        result = tc.rank({"user_id": "u-1", "user": {"segment": "new"}},
                         actions=["hero-1", {"id": "hero-2", "features": {"c": "x"}}],
                         excluded_actions=["hero-1"], event_id="e-1")
        assert (result.event_id, result.action_id, result.ranking) == ("e-1", "hero-2",
                                                                       [("hero-2", 1.0)])
        assert result.probability == 1.0 and result.arm in {"bandit", "champion"}
        assert not result.fallback
        assert result.policy and result.deferred is False and result.explanation is None
        deferred = tc.rank({"user_id": "u-2"}, unit_id="unit-2", defer_activation=True)
        assert deferred.deferred is True
        explained = tc.rank({"user_id": "u-3"}, unit_id="unit-3", explain=True)
        assert explained.arm == "bandit"
        assert explained.explanation["action_id"] == explained.action_id
        tc.activate(deferred.event_id)
        key = tc.reward("e-1", 5.0, type="purchase", idempotency_key="order-1", wait=True)
        assert key == "order-1"
        assert tc.reward("e-1", 5.0, type="purchase", idempotency_key="order-1",
                         wait=True) == "order-1"  # a duplicate (200) is not an error
        tc.reward("e-1", type="click")
        tc.reward("never-ranked", type="click")
        assert tc.flush(timeout=10)
        assert tc.pending_rewards() == []
    logged = {d["event_id"]: d for d in decisions(client, team)}
    assert sorted(logged) == sorted(["e-1", deferred.event_id, explained.event_id])
    assert logged[deferred.event_id]["unit_id"] == "unit-2"
    assert sorted(r["type"] for r in logged["e-1"]["rewards"]) == ["click", "purchase"]
    [(item, error)] = rejected
    assert item["event_id"] == "never-ranked" and error["code"] == "not_found"
    [detail] = error["details"]
    assert re.fullmatch(r"rewards\[\d+\]\.event_id", detail["field"]), detail


def test_api_errors_surface_with_status_code_message_and_details(app, client, team):
    register(client, team)
    with sdk(app, team) as tc:
        with pytest.raises(TailorRequestError) as bad:
            tc.rank({"user_id": "u-1", "user": {"tags": ["a", {"b": 1}]}})
        assert (bad.value.status, bad.value.code) == (400, "validation_error")
        assert [d["field"] for d in bad.value.details] == ["context.user.tags[1]"]
        assert "context.user.tags[1]" in bad.value.message
        tc.rank({"user_id": "u-1"}, event_id="e-1")
        with pytest.raises(TailorRequestError) as changed:
            tc.rank({"user_id": "u-2"}, event_id="e-1")  # same event id, another payload
        assert (changed.value.status, changed.value.code) == (409, "conflict")
        with pytest.raises(TailorRequestError) as unknown:
            tc.reward("nope", type="click", wait=True)
        assert (unknown.value.status, unknown.value.code, unknown.value.details) == (
            404, "not_found", [])
        with pytest.raises(TailorRequestError) as inactive:
            tc.activate("nope")
        assert inactive.value.status == 404


def test_a_lost_answer_is_retried_with_the_same_ids_and_counted_once(app, client, team):
    register(client, team)
    lost: list[str] = []

    def lose_first_answer(request, _timeout):
        if request.path_url not in lost:
            lost.append(request.path_url)
            raise requests.ConnectionError("connection reset after the request was sent")

    adapter = FlaskAdapter(app, after=lose_first_answer)
    with sdk(app, team, adapter) as tc:
        result = tc.rank({"user_id": "u-1"})
        tc.reward(result.event_id, 5.0, type="purchase", wait=True)
        tc.activate(result.event_id)
    # Each call sent twice (the first answer lost), the retry byte for byte the same
    # request: same event id, same idempotency key.
    assert len(adapter.sent) == 6 and len(set(adapter.sent)) == 3
    [logged] = decisions(client, team)
    assert logged["event_id"] == result.event_id and len(logged["rewards"]) == 1


def test_rank_deadline_bounds_the_whole_rank(app, client, team):
    register(client, team)
    timeouts: list[float | None] = []

    def hang(_request, timeout):  # a service that never answers within the timeout
        timeouts.append(timeout)
        time.sleep(timeout or 0)
        raise requests.Timeout("read timed out")

    tc = sdk(app, team, FlaskAdapter(app, before=hang), timeout=0.4, retries=3,
             rank_deadline=0.5, fallback_action="hero-1")
    started = time.monotonic()
    result = tc.rank({"user_id": "u-1"})
    elapsed = time.monotonic() - started
    tc.close(timeout=1)
    assert result.fallback and result.action_id == "hero-1"
    assert elapsed < 0.65, f"rank took {elapsed:.2f} s with rank_deadline=0.5 ({timeouts})"


def test_an_answer_that_is_not_tailors_is_a_tailor_error(app, client, team):
    register(client, team)

    def proxy(status: int, body: bytes) -> FlaskAdapter:
        adapter = FlaskAdapter(app)
        answer = requests.Response()
        answer.status_code, answer._content = status, body

        def send(request, **_kw):
            answer.request, answer.url = request, request.url
            return answer

        adapter.send = send  # type: ignore[method-assign]
        return adapter

    # A gateway's own error bodies: not Tailor's shape, still a TailorRequestError.
    for body in (b'{"error": "no route"}', b'["not found"]', b"<html>404</html>"):
        with sdk(app, team, proxy(404, body)) as tc, pytest.raises(TailorRequestError) as err:
            tc.activate("e-1")
        assert err.value.status == 404
    # A 200 that is not JSON (a captive portal): unavailable, so rank falls back.
    with sdk(app, team, proxy(200, b"<html>hello</html>"), retries=0,
             fallback_action="hero-1") as tc:
        assert tc.rank({"user_id": "u-1"}).fallback
        with pytest.raises(TailorUnavailable):
            tc.activate("e-1")
