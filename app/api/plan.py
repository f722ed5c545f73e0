"""Experiment planning: days until an A/B comparison and an OPE estimate reach a CI
half-width (no experiment, no database: the body is the whole input)."""

from __future__ import annotations

import dataclasses

from flask import jsonify

from app.api import bp
from app.auth import requires
from app.http import command_body
from experiments import plan as planning


@bp.post("/plan")
@requires("analyst")
def plan():
    request = planning.parse(command_body(planning.PlanRequest))
    return jsonify(dataclasses.asdict(planning.plan(request)))
