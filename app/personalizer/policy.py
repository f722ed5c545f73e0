"""`configurations/policy` (GET, PUT, DELETE): the learning policy as VW arguments.

PUT reads the arguments through the allow-list of `bandits.policy_arguments` into the
experiment's learner preset and parameters (a new experiment version; new VW arguments
start a new model); the answer's `arguments` are the VW command line Tailor actually runs,
built by Tailor, never the string received. DELETE restores Personalizer's default policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, jsonify

from app import db
from app.auth import current_principal
from app.http import json_body
from app.personalizer import bodies, features
from app.personalizer.errors import PersonalizerError
from app.personalizer.routes import experiment, route
from bandits.exploration import ExplorationError
from bandits.policy_arguments import parse_policy
from experiments import registry
from experiments.errors import ValidationFailed
from experiments.models import Experiment

CODE = "InvalidPolicyConfiguration"
# Personalizer's default learning settings.
DEFAULT_NAME = "default"
DEFAULT_ARGUMENTS = "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"


def serialize(target: Experiment) -> dict[str, Any]:
    settings = target.settings
    name = settings.service.policy_name or DEFAULT_NAME
    return {"name": name, "arguments": settings.learner.vw_arguments}


def _apply(target: Experiment, name: str, arguments: Any) -> None:
    try:
        exploration, params = parse_policy(arguments)
    except ExplorationError as exc:
        raise PersonalizerError.invalid("arguments", exc.reason, CODE) from exc
    learner = {"exploration": exploration, "params": params,
               "mode": target.settings.learner.mode}
    service = {**target.settings.service.raw, "policy_name": name}
    # The history row keeps the arguments as set (its configuration, Tailor's own).
    try:
        registry.change_config(db.session(), registry.ChangeConfig(
            target, {"learner": learner, "service": service}, "personalizer_policy",
            current_principal().key_id, {"name": name, "arguments": arguments}))
    except ValidationFailed as exc:
        raise PersonalizerError.invalid("arguments", exc.message, CODE) from exc


def _name(body: Mapping[str, Any]) -> str:
    name = body.get("name", DEFAULT_NAME)
    if not isinstance(name, str) or not name or len(name) > 256:
        raise PersonalizerError.invalid("name", "must be a non-empty string of at most 256",
                                        "InvalidPolicyContract")
    return name


@route("GET", "/configurations/policy", scope="analyst", invalid=CODE,
       summary="The learning policy (VW arguments) Tailor runs for the experiment")
def get_policy() -> Response:
    return jsonify(serialize(experiment()))


@route("PUT", "/configurations/policy", scope="admin", invalid=CODE,
       summary="Set the learning policy from VW arguments (allow-listed learning options)",
       schema=bodies.PersonalizerPolicy)
def update_policy() -> Response:
    target = experiment()
    body = features.body_object(json_body())
    if not isinstance(body.get("arguments"), str):
        raise PersonalizerError.invalid("arguments", "required: VW arguments (a string)",
                                        "InvalidPolicyContract")
    _apply(target, _name(body), body["arguments"])
    return jsonify(serialize(target))


@route("DELETE", "/configurations/policy", scope="admin", invalid=CODE,
       summary="Reset the learning policy to Personalizer's default")
def reset_policy() -> Response:
    target = experiment()
    _apply(target, DEFAULT_NAME, DEFAULT_ARGUMENTS)
    return jsonify(serialize(target))
