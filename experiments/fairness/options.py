"""What an analyst can ask of the fairness report (query parameters), validated once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from experiments.errors import ValidationFailed
from experiments.query_names import check_names
from experiments.reports.sql import validate_field

NAMES = ("attribute", "since", "until", "top", "alpha", "samples")
DEFAULT_TOP = 10
MAX_TOP = 20
DEFAULT_SAMPLES = 200
# Each sampled context is scored once plus once per other value (at most MAX_TOP - 1):
# 1,000 contexts x 20 values bound a report to ~20,000 pmf evaluations.
MAX_SAMPLES = 1000


@dataclass(frozen=True, slots=True)
class FairnessOptions:
    """Options of the fairness report.

    Attributes:
        attribute: The context field (``gender`` or ``user.gender``).
        path: ``attribute`` split into its JSON path.
        top: Most frequent values kept; the rest are pooled as ``(other)``.
        alpha: Significance level; ``None`` uses the experiment's ``alpha``.
        samples: Logged contexts sampled for the counterfactual audit.
    """

    attribute: str
    path: tuple[str, ...]
    top: int = DEFAULT_TOP
    alpha: float | None = None
    samples: int = DEFAULT_SAMPLES


def parse_options(args: Mapping[str, str]) -> FairnessOptions:
    """Options from query parameters (``since``/``until`` are the view's); a 400 names the
    first bad one.

    Examples:
        >>> parse_options({"attribute": "user.gender", "top": "3"}).path
        ('user', 'gender')
    """
    check_names(args, NAMES)
    attribute = args.get("attribute") or ""
    if not attribute:
        raise ValidationFailed.field("attribute", "is required: a context field, `name` or "
                                     "`namespace.name` (e.g. ?attribute=user.gender)")
    path = validate_field(attribute, "attribute")
    return FairnessOptions(attribute, path,
                           _integer(args.get("top"), "top", DEFAULT_TOP, MAX_TOP),
                           _alpha(args.get("alpha")),
                           _integer(args.get("samples"), "samples", DEFAULT_SAMPLES,
                                    MAX_SAMPLES))


def _integer(raw: str | None, name: str, default: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    # isascii: str.isdigit() accepts "²", which int() refuses
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= high:
        raise ValidationFailed.field(name, f"must be an integer from 1 to {high}")
    return int(raw)


def _alpha(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 0.5):
        raise ValidationFailed.field("alpha", "must be a significance level, a number in "
                                     "(0, 0.5] (0.05 for 95% intervals)")
    return value
