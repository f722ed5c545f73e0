"""Analyst pages: sign-in with CSRF, session cookie, team isolation, the report page."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import create_app
from app.db import dispose as db_dispose
from experiments.models import ServiceSecret
from tests.conftest import session_of
from tests.integration.helpers import register
from tests.integration.test_ab_report import _decision, _write, experiment_id

PAGE = "/experiments/homepage-hero"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, key: str, next_: str = ""):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"key": key, "csrf_token": token, "next": next_})


def test_pages_redirect_to_login_until_signed_in(client, team):
    register(client, team)
    response = client.get(PAGE + "?segment=hour")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    done = sign_in(client, team.analyst, "/experiments/homepage-hero?segment=hour")
    assert done.status_code == 302 and done.headers["Location"] == PAGE + "?segment=hour"
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert team.analyst not in cookie and team.analyst.split("_", 2)[2] not in cookie
    page = client.get(PAGE)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'id="ope"' in html and "Always-valid (sequential)" in html and "<svg" in html
    assert client.get("/experiments").status_code == 200


@pytest.mark.parametrize("key, status", [("tlr_nope_nope", 401), ("garbage", 401),
                                         ("client", 403)])
def test_bad_keys_are_refused_on_the_form(client, team, key, status):
    key = team.client if key == "client" else key
    response = sign_in(client, key)
    assert response.status_code == status
    assert 'role="alert"' in response.get_data(as_text=True)
    assert client.get("/experiments").status_code == 302


def test_login_and_logout_need_the_csrf_token(client, team):
    client.get("/login")
    response = client.post("/login", data={"key": team.analyst, "csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/experiments").status_code == 302
    sign_in(client, team.analyst)
    assert client.post("/logout", data={}).status_code == 400
    assert client.get("/experiments").status_code == 200
    html = client.get("/experiments").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_of(html)}).status_code == 302
    assert client.get("/experiments").status_code == 302


def test_open_redirects_are_ignored(client, team):
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        response = sign_in(client, team.analyst, target)
        assert response.headers["Location"] == "/experiments"


def test_other_team_gets_404_and_revoked_key_is_signed_out(client, team, other_team):
    register(client, team)
    sign_in(client, other_team.analyst)
    assert client.get(PAGE).status_code == 404
    assert client.get(PAGE + "/report.csv").status_code == 404
    sign_in(client, team.analyst)
    assert client.get(PAGE).status_code == 200
    key_id = team.analyst.split("_")[1]
    assert client.delete(f"/v1/keys/{key_id}", headers=team.auth("admin")).status_code == 200
    assert client.get(PAGE).status_code == 302


def test_authorization_header_works_without_a_cookie(client, team):
    register(client, team)
    assert client.get(PAGE, headers=team.auth("analyst")).status_code == 200
    assert client.get(PAGE, headers=team.auth("client")).status_code == 403
    assert client.get(PAGE, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_downloads_and_bad_parameters(app, client, team):
    register(client, team)
    exp_id = experiment_id(app, "homepage-hero")
    _write(app, [_decision(exp_id, i, ("champion", "bandit")[i % 2], 1.7e9 + i, reward=1.0)
                 for i in range(6)], [])
    sign_in(client, team.analyst)
    csv = client.get(PAGE + "/report.csv")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    body = client.get(PAGE + "/report.json").get_json(force=True)
    assert body["arms"]["bandit"]["n"] == 3
    bad = client.get(PAGE + "?lift=zero")
    assert bad.status_code == 400 and "lift" in bad.get_data(as_text=True)
    assert bad.mimetype == "text/html"


def test_srm_banner_shows_when_it_fires(app, client, team):
    register(client, team)
    exp_id = experiment_id(app, "homepage-hero")
    arms = ["champion"] * 300 + ["bandit"] * 150
    _write(app, [_decision(exp_id, i, arm, 1.7e9 + i, reward=float(i % 2))
                 for i, arm in enumerate(arms)], [])
    html = client.get(PAGE, headers=team.auth("analyst")).get_data(as_text=True)
    assert 'id="srm-banner"' in html and html.index("srm-banner") < html.index("arms-table")


def test_secret_key_is_generated_once_and_shared(app, client, team, database_url):
    sign_in(client, team.analyst)
    with session_of(app) as session:
        stored = session.scalars(sa.select(ServiceSecret)).all()
    assert len(stored) == 1 and len(stored[0].value) >= 40
    # Another process (worker) reads the same secret: the cookie stays valid.
    other = create_app({"DATABASE_URL": database_url, "TESTING": True})
    other_client = other.test_client()
    cookie = client.get_cookie("session")
    other_client.set_cookie("session", cookie.value)
    assert other_client.get("/experiments").status_code == 200

    db_dispose(other)


def test_configured_secret_and_secure_cookie(database_url, team):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "SECRET_KEY": "configured-secret-key", "SESSION_COOKIE_SECURE": True})
    client = app.test_client()
    response = sign_in(client, team.analyst)
    assert "Secure" in response.headers["Set-Cookie"]
    with session_of(app) as session:
        assert session.scalars(sa.select(ServiceSecret)).all() == []

    db_dispose(app)


def test_api_requests_never_set_a_cookie(client, team):
    register(client, team)
    response = client.get("/v1/experiments", headers=team.auth("analyst"))
    assert "Set-Cookie" not in response.headers
