"""The v1 JSON API (API.md)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")

from app.api import audit, decisions, experiments, keys, learning, ope, rank, reports, rewards, units  # noqa: E402,F401,E501
