"""Rewards and activation."""

from __future__ import annotations

from flask import current_app, jsonify

from app import db, metrics
from app.api import bp
from app.auth import current_principal, guarded_key_id, requires, team_experiment
from app.http import json_body
from experiments import clock, rewards


@bp.post("/events/<event_id>/rewards")
@requires("client", cached=True)
def reward(event_id: str):
    principal = current_principal()
    item = rewards.parse_reward(json_body(), event_id)
    outcome = rewards.record(db.session(), principal.team_id, item, key_id=guarded_key_id(),
                             direct=db.direct())
    metrics.count_rewards(outcome)
    return jsonify({"event_id": event_id, "status": outcome}), 200 if outcome == "duplicate" \
        else 202


@bp.post("/experiments/<key>/rewards")
@requires("client")
def reward_batch(key: str):
    experiment = team_experiment(key)
    session = db.session()
    body = json_body()
    items = body.get("rewards") if isinstance(body, dict) else None
    result = rewards.record_batch(session, experiment, items,
                                  current_app.config["MAX_BATCH_REWARDS"])
    metrics.count_batch(result)
    return jsonify(result)


@bp.post("/events/<event_id>/activate")
@requires("client")
def activate(event_id: str):
    activated_at = rewards.activate(db.session(), current_principal().team_id, event_id)
    return jsonify({"event_id": event_id, "activated_at": clock.iso(activated_at)})
