"""The v1 JSON API (API.md)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")

import app.api.drift  # noqa: E402,F401  (drift between windows)
import app.api.fairness  # noqa: E402,F401  (fairness report)
import app.api.features  # noqa: E402,F401  (feature importance)
import app.api.ope  # noqa: E402,F401  (OPE reports, health, promotion)
import app.api.plan  # noqa: E402,F401  (experiment planning)
import app.api.profiles  # noqa: E402,F401  (unit profiles)
from app.api import audit, decisions, experiments, keys, learning, rank, reports, rewards, units  # noqa: E402,F401,E501
