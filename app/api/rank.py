"""Rank: the hot path."""

from __future__ import annotations

from flask import current_app, jsonify

from app import db, metrics
from app.api import bp
from app.auth import current_principal, guarded_key_id, requires
from app.http import context_limits, json_body
from bandits.features import feature_types
from experiments import ranking
from experiments.profiles import ProfileCache

EXPERIMENTS = "tailor.experiments"
PROFILES = "tailor.profiles"


def profile_cache() -> ProfileCache:
    """This worker's unit profiles (experiments.profiles)."""
    found = current_app.extensions.get(PROFILES)
    if found is None:
        found = current_app.extensions.setdefault(
            PROFILES, ProfileCache(current_app.config.get("PROFILE_CHECK_SECONDS", 1.0)))
    return found


@bp.post("/experiments/<key>/rank")
@requires("client", cached=True)
def rank(key: str):
    principal = current_principal()
    session = db.session()
    # Per-process cache; rank re-reads the experiment when its version moved on.
    experiments = current_app.extensions.setdefault(EXPERIMENTS, ranking.ExperimentCache())
    experiment = experiments.get(session, principal.team_id, key)
    request = ranking.parse_request(json_body(), current_app.config["MAX_ACTIONS"],
                                    context_limits(),
                                    feature_types(experiment.config.get("feature_types")))
    result = ranking.rank(session, experiment, request, current_app.extensions["tailor.policies"],
                          principal.pii_salt, experiments, direct=db.direct(),
                          key_id=guarded_key_id(), profiles=profile_cache())
    metrics.count_decision(principal.team_name, key, result["arm"])
    return jsonify(result)
