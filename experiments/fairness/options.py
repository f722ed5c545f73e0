"""What an analyst can ask of the fairness report (query parameters), validated once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from experiments.errors import ValidationFailed
from experiments.query_names import check_names, query_alpha, query_integer
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
                           query_integer(args.get("top"), "top", DEFAULT_TOP, 1, MAX_TOP),
                           query_alpha(args.get("alpha")),
                           query_integer(args.get("samples"), "samples", DEFAULT_SAMPLES, 1,
                                         MAX_SAMPLES))


