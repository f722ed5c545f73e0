"""Analyst pages (HTML): sign in with a key, list experiments, read the A/B report.

Server-rendered Jinja templates (app/templates), one stylesheet (app/static), charts as
inline SVG drawn by `app.web.svg`; no JavaScript, nothing from a CDN.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("web", __name__)
# Paths whose requests open the session cookie (the API never reads it).
PAGE_PATHS = ("/login", "/logout", "/experiments")
# The HTML routes (Flask rules): pages, not part of the JSON API's OpenAPI table.
HTML_ROUTES = frozenset({"/", "/login", "/logout", "/experiments", "/experiments/<key>",
                         "/experiments/<key>/report.<any(json, csv):fmt>"})


def init_app(app: Flask) -> None:
    from app.web import formatting, secret, views  # noqa: F401  (views registers routes)

    # HttpOnly and SameSite=Lax always; Secure when SESSION_COOKIE_SECURE (behind TLS).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.session_interface = secret.LazySecretSessions(PAGE_PATHS)
    for name in ("num", "pct", "pval", "when"):
        app.add_template_filter(getattr(formatting, name), name)
    app.register_blueprint(bp)
