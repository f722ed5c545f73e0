"""Inputs the fuzzer rarely reaches, pinned: a NUL character anywhere never gives a 5xx
(PostgreSQL refuses NUL in text; SQLite stores it)."""

from __future__ import annotations

from tests.integration.helpers import experiment_body, register

NUL = "a\u0000b"
CASES = [
    ("post", "/v1/experiments/homepage-hero/rank", {"context": {"x": NUL}}),
    ("post", "/v1/experiments/homepage-hero/rank", {"context": {NUL: 1}}),
    ("post", "/v1/experiments/homepage-hero/rank", {"event_id": NUL}),
    ("post", "/v1/experiments/homepage-hero/rank", {"unit_id": NUL}),
    ("post", "/v1/experiments/homepage-hero/rank", {"actions": [{"id": NUL}]}),
    ("post", "/v1/events/a%00b/rewards", {"type": "click"}),
    ("post", "/v1/experiments/homepage-hero/rewards", {"rewards": [{"event_id": NUL}]}),
    ("post", "/v1/experiments", experiment_body("other", name=NUL)),
    ("get", "/v1/experiments/a%00b", None),
    ("get", "/v1/experiments/homepage-hero/decisions?unit_id=a%00b", None),
    ("post", "/v1/keys", {"scope": "client", "name": NUL}),
]


def test_nul_characters_never_give_a_server_error(client, team):
    register(client, team)
    for method, path, body in CASES:
        response = getattr(client, method)(path, json=body, headers=team.auth("admin"))
        assert response.status_code < 500, (path, body, response.json)
        assert response.is_json
        if response.status_code >= 400:
            assert set(response.json["error"]) >= {"code", "message"}
