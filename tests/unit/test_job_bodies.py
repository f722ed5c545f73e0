"""Personalizer's job bodies read into the offline commands (app.personalizer.job_bodies):
what Personalizer accepted is accepted (unknown fields ignored), anything else is a 400
naming the field."""

from __future__ import annotations

import pytest

from app.personalizer import job_bodies
from experiments import clock
from experiments.errors import ValidationFailed
from experiments.models import OfflineJob
from experiments.offline import service
from experiments.offline.commands import (
    ApplyEvaluation,
    CustomPolicy,
    JobWindow,
    StartEvaluation,
    StartImportance,
)

START, END = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
WINDOW = {"name": "w", "startTime": START, "endTime": END}


def test_an_evaluation_body_becomes_its_command_and_unknown_fields_are_ignored():
    body = {**WINDOW, "policies": [{"name": "p", "arguments": "--cb_explore_adf -q ua"}],
            "enablePolicyOptimization": True, "somethingNew": {"x": 1}}
    window = JobWindow("w", clock.parse_iso(START), clock.parse_iso(END))
    assert job_bodies.evaluation("ev1", body) == StartEvaluation(
        "ev1", window, (CustomPolicy("p", "--cb_explore_adf -q ua"),), True)
    assert job_bodies.evaluation("ev2", WINDOW) == StartEvaluation("ev2", window)
    assert job_bodies.evaluation("ev3", {**WINDOW, "enablePolicyOptimization": None}) == \
        StartEvaluation("ev3", window)
    assert job_bodies.importance("fi", {**WINDOW, "extra": 1}) == StartImportance("fi", window)
    assert job_bodies.apply({"evaluationId": "ev1", "policyName": "p", "x": 0}) == \
        ApplyEvaluation("ev1", "p")


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"),
    ({"startTime": START, "endTime": END}, "name"),
    ({**WINDOW, "name": "x" * 257}, "name"),
    ({"name": "w", "endTime": END}, "startTime"),
    ({**WINDOW, "endTime": "yesterday"}, "endTime"),
    ({**WINDOW, "endTime": START}, "endTime"),
    ({**WINDOW, "endTime": "2027-06-01T00:00:00Z"}, "startTime"),
    ({**WINDOW, "policies": {"name": "p"}}, "policies"),
    ({**WINDOW, "policies": [{"name": f"p{i}", "arguments": "-q ua"} for i in range(9)]},
     "policies"),
    ({**WINDOW, "policies": ["p"]}, "policies[0]"),
    ({**WINDOW, "policies": [{"arguments": "-q ua"}]}, "policies[0].name"),
    ({**WINDOW, "policies": [{"name": "p", "arguments": " "}]}, "policies[0].arguments"),
    ({**WINDOW, "enablePolicyOptimization": "false"}, "enablePolicyOptimization"),
    ({**WINDOW, "enablePolicyOptimization": 1}, "enablePolicyOptimization"),
])
def test_a_bad_evaluation_body_is_refused_naming_the_field(body, field):
    with pytest.raises(ValidationFailed) as caught:
        job_bodies.evaluation("ev", body)
    assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize(("body", "field"), [
    ("x", "body"), ({"policyName": "p"}, "evaluationId"), ({"evaluationId": ""}, "evaluationId"),
    ({"evaluationId": "ev"}, "policyName"), ({"evaluationId": "ev", "policyName": 3}, "policyName"),
])
def test_a_bad_apply_body_is_refused_naming_the_field(body, field):
    with pytest.raises(ValidationFailed) as caught:
        job_bodies.apply(body)
    assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize("raw", ["", "x" * 257])
def test_a_job_id_is_one_to_256_characters(raw):
    with pytest.raises(ValidationFailed):
        job_bodies.job_id(raw)


@pytest.mark.parametrize(("stored", "optimize"), [
    ({"policies": [], "optimize": True}, True), ({"policies": [], "optimize": False}, False),
    ({"policies": [], "enablePolicyOptimization": True}, True), ({}, False)])
def test_the_stored_request_reads_rows_written_before_the_command(stored, optimize):
    assert service._optimize(OfflineJob(request=stored)) is optimize
