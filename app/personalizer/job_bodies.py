"""Personalizer's job bodies (evaluations, feature importances, applyFromEvaluation) read
into `experiments.offline.commands`: the wire's camelCase fields stop here.

As Personalizer did, fields the body does not use are ignored; a used field that is
missing or malformed is a 400 naming it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from experiments import clock
from experiments.errors import ValidationFailed
from experiments.offline.commands import (
    ApplyEvaluation,
    CustomPolicy,
    JobWindow,
    StartEvaluation,
    StartImportance,
)
from experiments.offline.jobs import MAX_ID, MAX_WINDOW_SECONDS

MAX_POLICIES = 8


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ValidationFailed.field("body", "must be a JSON object")
    return body


def _time(body: Mapping[str, Any], field: str) -> float:
    value = body.get(field)
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "required: an ISO 8601 date-time")
    try:
        return clock.parse_iso(value)
    except ValueError:
        raise ValidationFailed.field(field, f"{value!r} is not an ISO 8601 date-time") from None


def job_id(raw: str, field: str = "id") -> str:
    """A job id from the path."""
    if not raw or len(raw) > MAX_ID:
        raise ValidationFailed.field(field, f"must be 1 to {MAX_ID} characters")
    return raw


def window(body: Any) -> JobWindow:
    """A job's `name`, `startTime` and `endTime`."""
    body = _object(body)
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_ID:
        raise ValidationFailed.field("name", f"required: a name of 1 to {MAX_ID} characters")
    start, end = _time(body, "startTime"), _time(body, "endTime")
    if not start < end:
        raise ValidationFailed.field("endTime", "must be after startTime")
    if end - start > MAX_WINDOW_SECONDS:
        raise ValidationFailed.field("startTime", "the window is at most 366 days")
    return JobWindow(name, start, end)


def _policies(raw: Any) -> tuple[CustomPolicy, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_POLICIES:
        raise ValidationFailed.field("policies", f"must be a list of at most {MAX_POLICIES} "
                                     "{name, arguments} objects")
    found = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValidationFailed.field(f"policies[{index}]", "must be an object")
        name, arguments = item.get("name"), item.get("arguments")
        if not isinstance(name, str) or not name or len(name) > 256:
            raise ValidationFailed.field(f"policies[{index}].name",
                                         "must be a name of 1 to 256 characters")
        if not isinstance(arguments, str) or not arguments.strip():
            raise ValidationFailed.field(f"policies[{index}].arguments",
                                         "must be a non-empty VW argument string")
        found.append(CustomPolicy(name, arguments))
    return tuple(found)


def _flag(body: Mapping[str, Any], field: str) -> bool:
    # A boolean in Personalizer's contract: bool("false") would be True, so anything
    # else is refused rather than guessed.
    value = body.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValidationFailed.field(field, f"must be true or false, not {value!r}")
    return value


def evaluation(raw_id: str, body: Any) -> StartEvaluation:
    """`PUT evaluations/{id}`: the window, `policies` and `enablePolicyOptimization`."""
    found = window(body)
    return StartEvaluation(job_id(raw_id), found, _policies(body.get("policies")),
                           _flag(body, "enablePolicyOptimization"))


def evaluation_v1(body: Any) -> StartEvaluation:
    """`POST evaluations` (v1.0 to v1.1-preview.3): the service names the evaluation, and
    the optimization flag is `enableOfflineExperimentation`."""
    found = window(body)
    return StartEvaluation(uuid.uuid4().hex, found, _policies(body.get("policies")),
                           _flag(body, "enableOfflineExperimentation"))


def importance(raw_id: str, body: Any) -> StartImportance:
    """`PUT featureImportances/{id}`: the window."""
    return StartImportance(job_id(raw_id), window(body))


def apply(body: Any) -> ApplyEvaluation:
    """`configurations/applyFromEvaluation`: `evaluationId` and `policyName`."""
    body = _object(body)
    evaluation_id, name = body.get("evaluationId"), body.get("policyName")
    if not isinstance(evaluation_id, str) or not evaluation_id:
        raise ValidationFailed.field("evaluationId", "required: the evaluation's id")
    if not isinstance(name, str) or not name:
        raise ValidationFailed.field("policyName", "required: the evaluated policy's name")
    return ApplyEvaluation(evaluation_id, name)
