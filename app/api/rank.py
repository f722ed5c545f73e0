"""Rank: the hot path, served by app.hot in front of Flask (this view declares the route)."""

from __future__ import annotations

from flask import Response

from app import hot
from app.api import bp


@bp.post("/experiments/<key>/rank")
def rank(key: str) -> Response:
    return hot.through_flask("api.rank", key)
