"""The request bodies of /openapi.json are generated from the request types (command records
and typed bodies), so they cannot drift from the code (`app/openapi_bodies.py`)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

import msgspec
import pytest

from app import openapi
from app.openapi_bodies import REF, body_type, closed, schemas
from app.personalizer import bodies as pbodies
from app.personalizer.configuration import FIELD_NAMES
from experiments import experiment_commands, key_commands, profile_commands, validation
from experiments.command_fields import body_field_names, context

SPEC = openapi.spec()
COMPONENTS = SPEC["components"]["schemas"]
REQUESTS = {row[4] for row in openapi.ENDPOINTS if row[4] is not None}


def _request_bodies(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op["requestBody"]["content"]["application/json"]["schema"])
            for path, ops in spec["paths"].items() for method, op in ops.items()
            if "requestBody" in op]


def _generated(request: type) -> dict[str, Any]:
    """What msgspec writes for the request's body, independently of `app.openapi`."""
    _, components = msgspec.json.schema_components([body_type(request)], ref_template=REF)
    return components[body_type(request).__name__]


def test_every_documented_body_is_generated_from_its_request_type():
    rows = {(m, p): row[4] for row in openapi.ENDPOINTS for m, p in [(row[0], row[1])]}
    documented = _request_bodies(SPEC)
    assert len(documented) >= 30  # v1 and the Personalizer bodies under every prefix
    for method, path, schema in documented:
        request = rows[(method, path)]
        assert request is not None, (method, path)
        name = body_type(request).__name__
        assert schema == {"$ref": REF.format(name=name)}
        generated = _generated(request)
        if dataclasses.is_dataclass(body_type(request)) or closed(body_type(request)):
            # as `app.http.command_body` and the services enforce
            generated["additionalProperties"] = False
        assert COMPONENTS[name] == generated


def test_no_request_schema_is_written_by_hand():
    # The hand-written schemas are responses and errors only.
    assert set(openapi.SCHEMAS) == {"Error", "RankResponse"}
    _, components = schemas(REQUESTS)
    assert set(components) | set(openapi.SCHEMAS) == set(COMPONENTS)


def _replaced(old: type, new: type) -> list[Any]:
    return [(*row[:4], new, row[5]) if row[4] is old else row for row in openapi.ENDPOINTS]


def test_a_field_added_to_a_command_appears_in_the_spec():
    extended = dataclasses.make_dataclass(
        "CreateKey", [("colour", str, dataclasses.field(default="blue")),
                      ("on_behalf_of", str, context())],
        bases=(key_commands.CreateKey,), frozen=True, kw_only=True)
    schema = openapi.spec(_replaced(key_commands.CreateKey, extended))
    properties = schema["components"]["schemas"]["CreateKey"]["properties"]
    assert "colour" in properties and "colour" not in COMPONENTS["CreateKey"]["properties"]
    # Context fields come from the path or the caller's key, never from the body.
    assert "on_behalf_of" not in properties and "actor" not in properties


def test_a_field_added_to_a_typed_body_appears_in_the_spec():
    class ExperimentSpec(experiment_commands.ExperimentSpec, total=False):
        colour: str

    extended = dataclasses.make_dataclass(
        "CreateExperiment",
        [("spec", ExperimentSpec, dataclasses.field(metadata={"source": "whole_body"}))],
        bases=(experiment_commands.CreateExperiment,), frozen=True, kw_only=True)
    schema = openapi.spec(_replaced(experiment_commands.CreateExperiment, extended))
    assert "colour" in schema["components"]["schemas"]["ExperimentSpec"]["properties"]


def test_a_changed_constraint_appears_in_the_spec():
    assert COMPONENTS["CreateKey"]["required"] == ["scope"]
    assert COMPONENTS["CreateKey"]["properties"]["scope"] == {
        "enum": ["admin", "analyst", "client"]}
    assert COMPONENTS["ProfileBatch"]["properties"]["profiles"]["maxItems"] == 1000


def test_two_body_types_of_one_name_are_refused():
    class CreateKey(TypedDict):
        scope: str

    with pytest.raises(ValueError, match="CreateKey"):
        schemas([key_commands.CreateKey, CreateKey])


@pytest.mark.parametrize(("body", "keys"), [
    (experiment_commands.ExperimentSpec, validation.TOP_LEVEL),
    (experiment_commands.ExperimentChanges, validation.PATCHABLE),
    (experiment_commands.RewardSpec, validation.KNOWN_KEYS["reward"]),
    (experiment_commands.LearnerSpec, validation.KNOWN_KEYS["learner"]),
    (experiment_commands.ChampionSpec, validation.KNOWN_KEYS["champion"]),
    (experiment_commands.ProfileSetting, validation.KNOWN_KEYS["profile"]),
    (experiment_commands.ActionSpec, validation.KNOWN_KEYS["actions[]"]),
    (pbodies.PersonalizerServiceConfiguration, FIELD_NAMES),
])
def test_documented_keys_are_the_keys_the_service_accepts(body, keys):
    assert set(body.__annotations__) == set(keys)


def test_the_documented_key_fields_are_the_accepted_ones():
    documented = set(COMPONENTS["CreateKey"]["properties"])
    assert documented == body_field_names(key_commands.CreateKey) == {
        "scope", "name", "default_experiment", "rate_limits"}


def test_profile_bodies_are_documented():
    assert COMPONENTS["Profile"]["required"] == ["features"]
    assert body_type(profile_commands.PutProfile) is profile_commands.Profile


def test_tailor_bodies_are_closed_and_personalizer_bodies_open():
    # Tailor refuses unknown fields at every level (a 400 naming the field); Personalizer
    # ignored them, and so do its endpoints here.
    for name, component in COMPONENTS.items():
        if name in openapi.SCHEMAS:
            continue
        expected = None if name.startswith("Personalizer") else False
        assert component.get("additionalProperties") is expected, name
