"""Experiment registry endpoints."""

from __future__ import annotations

from flask import jsonify

from app import db
from app.api import bp
from app.auth import current_principal, requires, team_experiment
from app.http import json_body
from experiments import clock, experiment_commands, registry
from experiments.validation import notes


@bp.post("/experiments")
@requires("admin")
def create_experiment():
    command = experiment_commands.CreateExperiment(actor=current_principal(),
                                                   spec=json_body())
    experiment = experiment_commands.create(db.session(), command)
    return jsonify({**registry.serialize(experiment),
                    "notes": notes(command.spec, experiment.config)}), 201


@bp.get("/experiments")
@requires("analyst")
def list_experiments():
    rows = registry.list_for_team(db.session(), current_principal().team_id)
    return jsonify({"experiments": [registry.serialize(e) for e in rows]})


@bp.get("/experiments/<key>")
@requires("analyst")
def get_experiment(key: str):
    return jsonify(registry.serialize(team_experiment(key)))


@bp.patch("/experiments/<key>")
@requires("admin")
def patch_experiment(key: str):
    experiment = team_experiment(key)
    experiment_commands.patch(db.session(), experiment_commands.PatchExperiment(
        actor=current_principal(), experiment=experiment, changes=json_body()))
    return jsonify(registry.serialize(experiment))


@bp.get("/experiments/<key>/history")
@requires("analyst")
def experiment_history(key: str):
    session = db.session()
    experiment = team_experiment(key)
    return jsonify({"history": [
        {"version": h.version, "change": h.change, "actor": h.actor, "details": h.details,
         "config": h.config, "created_at": clock.iso(h.created_at)}
        for h in registry.history(session, experiment)]})
