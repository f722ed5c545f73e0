"""The v1 JSON API (API.md)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")

from app.api import decisions, experiments, keys, rank, rewards  # noqa: E402,F401
