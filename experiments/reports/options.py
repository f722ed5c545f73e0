"""What an analyst can ask of the A/B report (query parameters), validated once."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from experiments.abstats.multitest import ADJUSTMENTS
from experiments.errors import ValidationFailed
from experiments.query_names import check_names, query_integer
from experiments.reports.sql import validate_field

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
MAX_TOP = 50
DEFAULT_LIFT = 0.05
DEFAULT_TOP = 10
NAMES = ("segment", "lift", "include_open", "top", "multiple_testing")


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """Options of the A/B report.

    Attributes:
        segment: Context field to break the report down by (``country``, ``user.country``).
        lift: Relative lift for the power analysis (0.05 = +5%).
        include_open: Count decisions whose reward window is still open (their reward so
            far); ``False`` restricts the report to closed windows.
        top: Number of segment values shown before pooling the rest as ``(other)``.
        adjustment: Multiple-testing correction for this report (``holm`` or ``bh``);
            ``None`` uses the experiment's ``analysis.multiple_testing``.
    """

    segment: str | None = None
    lift: float = DEFAULT_LIFT
    include_open: bool = True
    top: int = DEFAULT_TOP
    adjustment: str | None = None


def parse_options(args: Mapping[str, str], extra: Collection[str] = ()) -> ReportOptions:
    """Options from query parameters; a 400 names the first bad one.

    Args:
        args: The query parameters (unknown or repeated names are refused).
        extra: Further names the caller reads itself (``format``).

    Examples:
        >>> parse_options({"lift": "0.1", "include_open": "false"})
        ReportOptions(segment=None, lift=0.1, include_open=False, top=10, adjustment=None)
    """
    check_names(args, (*NAMES, *extra))
    segment = args.get("segment") or None
    if segment is not None:
        validate_field(segment)
    top = query_integer(args.get("top"), "top", DEFAULT_TOP, 1, MAX_TOP)
    return ReportOptions(segment, _lift(args.get("lift")), _flag(args.get("include_open")),
                         top, _adjustment(args.get("multiple_testing")))


def _adjustment(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in ADJUSTMENTS:
        raise ValidationFailed.field("multiple_testing", "must be holm (family-wise error) "
                                     "or bh (Benjamini-Hochberg false discovery rate)")
    return raw


def _lift(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_LIFT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value == 0 or not -1 < value <= 10:
        raise ValidationFailed.field("lift", "must be a relative lift, a number in (-1, 10] "
                                     "other than 0 (0.05 means +5%)")
    return value


def _flag(raw: str | None) -> bool:
    if raw is None or raw == "":
        return True
    if raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    raise ValidationFailed.field("include_open", "must be true or false")


