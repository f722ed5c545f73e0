"""Validation of an experiment's ``analysis`` settings (how its A/B report is analysed).

::

    "analysis": {
      "multiple_testing": "holm",             # or "bh" (Benjamini-Hochberg)
      "cuped_covariate": "user.orders_90d",   # numeric pre-exposure context field, or null
      "guardrails": [{"metric": "event:refund", "margin": 0.01,
                      "higher_is_better": false}],
      "per_unit_means": false                 # also compare the reward per unit
    }

Every error names its path (``analysis.guardrails[0].margin``); unknown keys are refused
with the nearest known one suggested.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from experiments.errors import ValidationFailed

KEYS = ("multiple_testing", "cuped_covariate", "guardrails", "per_unit_means")
GUARDRAIL_KEYS = ("metric", "margin", "higher_is_better")
ADJUSTMENTS = ("holm", "bh")
MAX_GUARDRAILS = 10
_FIELD = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64})?$")


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed.field(path, message)


def _known(value: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in sorted(set(value) - set(allowed)):
        near = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else \
            f"; known fields: {', '.join(allowed)}"
        raise _fail(f"{path}.{key}", "unknown field" + hint)


def validate_analysis(value: Any, reward: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised ``analysis`` object, or a 400 naming the offending path.

    Examples:
        >>> validate_analysis({"guardrails": [{"metric": "event:refund", "margin": 0.01}]},
        ...                   {"events": {"refund": "value"}})["guardrails"]
        [{'metric': 'event:refund', 'margin': 0.01, 'higher_is_better': False}]
    """
    if not isinstance(value, Mapping):
        raise _fail("analysis", "must be an object")
    _known(value, KEYS, "analysis")
    method = value.get("multiple_testing", "holm")
    if method not in ADJUSTMENTS:
        raise _fail("analysis.multiple_testing", "must be holm (family-wise error) or bh "
                    "(Benjamini-Hochberg false discovery rate)")
    covariate = value.get("cuped_covariate")
    if covariate is not None and (not isinstance(covariate, str) or not _FIELD.match(covariate)):
        raise _fail("analysis.cuped_covariate", "must be a numeric context field measured "
                    "before exposure: name or namespace.name (e.g. user.orders_90d)")
    per_unit = value.get("per_unit_means", False)
    if not isinstance(per_unit, bool):
        raise _fail("analysis.per_unit_means", "must be true or false")
    return {"multiple_testing": method, "cuped_covariate": covariate,
            "guardrails": _guardrails(value.get("guardrails", []), reward),
            "per_unit_means": per_unit}


def _guardrails(value: Any, reward: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_GUARDRAILS:
        raise _fail("analysis.guardrails", f"must be a list of at most {MAX_GUARDRAILS} "
                    "guardrails")
    metrics = ["reward", *(f"event:{t}" for t in reward.get("events", {}))]
    out, seen = [], set()
    for i, item in enumerate(value):
        path = f"analysis.guardrails[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(path, "must be an object with metric and margin")
        _known(item, GUARDRAIL_KEYS, path)
        metric = item.get("metric")
        if metric not in metrics:
            raise _fail(f"{path}.metric", f"must be one of {', '.join(metrics)}")
        if metric in seen:
            raise _fail(f"{path}.metric", "is already a guardrail")
        seen.add(metric)
        margin = item.get("margin")
        if isinstance(margin, bool) or not isinstance(margin, int | float) \
                or not math.isfinite(margin) or margin < 0:
            raise _fail(f"{path}.margin", "must be a non-negative number: the largest "
                        "acceptable harm per decision, in the metric's unit")
        better = item.get("higher_is_better", False)
        if not isinstance(better, bool):
            raise _fail(f"{path}.higher_is_better", "must be true or false")
        out.append({"metric": metric, "margin": float(margin), "higher_is_better": better})
    return out
