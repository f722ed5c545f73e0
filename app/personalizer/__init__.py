"""Azure AI Personalizer-compatible endpoints, under every prefix Microsoft's clients call.

A Personalizer client changes only its base URL and key. `routes` holds the one way to
declare a view (`@route(...)`, served under `/personalizer/v1.0`, `/personalizer/v1.1-preview.1`
to `.3` and `/personalizer?api-version=2022-09-01-preview`); `errors` renders every failure
under `/personalizer` in Personalizer's error shape; `features` reads Personalizer's feature
lists; the other modules are the views (`data`, `multislot`, ...), each an adapter over the
same domain services as Tailor's own API.
"""

from __future__ import annotations

from flask import Flask

from app.personalizer import errors, routes


def init_app(app: Flask) -> None:
    """Serve every declared view under every prefix; errors in Personalizer's shape."""
    routes.register(app)
    errors.init_app(app)
