"""Rewards and activation."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from app import db, hot, metrics
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.http import json_body
from experiments import clock, rewards


@bp.post("/events/<event_id>/rewards")
def reward(event_id: str) -> Response:
    """One reward: the hot path (app.hot); this view declares the route."""
    return hot.through_flask("api.reward", event_id)


@bp.post("/experiments/<key>/rewards")
@requires("client")
def reward_batch(key: str):
    experiment = team_experiment(key)
    session = db.session()
    items = rewards.batch_items(json_body())
    result = rewards.record_batch(session, experiment, items,
                                  current_app.config["MAX_BATCH_REWARDS"])
    metrics.count_batch(result)
    return jsonify(result)


@bp.post("/events/<event_id>/activate")
@requires("client")
def activate(event_id: str):
    activated_at = rewards.activate(db.session(), current_principal().team_id, event_id)
    return jsonify({"event_id": event_id, "activated_at": clock.iso(activated_at)})
