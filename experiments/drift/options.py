"""The drift report's query parameters: two windows, the PSI threshold, alpha, the sample.

Defaults: ``recent_until`` now, ``recent_since`` 24 hours before it; ``reference_until``
``recent_since``, ``reference_since`` the recent window's length before it (so by
default the reference is the 24 hours before the last 24). A reversed or empty window,
and windows that overlap, are a 400 naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from experiments.drift.sql import Window
from experiments.errors import ValidationFailed
from experiments.query_names import check_names, query_alpha, query_integer

DAY = 86400.0
TIMES = ("reference_since", "reference_until", "recent_since", "recent_until")
NAMES = (*TIMES, "threshold", "alpha", "sample")
DEFAULT_THRESHOLD = 0.25
DEFAULT_SAMPLE = 10_000
MAX_SAMPLE = 100_000


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """What the drift report compares.

    Attributes:
        reference: The reference window.
        recent: The recent window.
        threshold: PSI above which a feature alerts.
        alpha: Significance level of the reward and model-quality tests (None: the
            experiment's).
        sample: At most this many decisions of each window are read for the PSI.
    """

    reference: Window
    recent: Window
    threshold: float = DEFAULT_THRESHOLD
    alpha: float | None = None
    sample: int = DEFAULT_SAMPLE


def check(args: Mapping[str, str]) -> None:
    """Refuse unknown and repeated parameter names (a 400 naming the first)."""
    check_names(args, NAMES)


def parse(args: Mapping[str, str], times: Mapping[str, float], now: float) -> DriftOptions:
    """Options from the query parameters.

    Args:
        args: The query parameters (names already checked).
        times: The window bounds given, parsed (epoch seconds; absent ones left out).
        now: The report's clock (the default end of the recent window).

    Examples:
        >>> o = parse({}, {}, 2 * DAY)
        >>> (o.reference.since, o.reference.until, o.recent.since, o.recent.until)
        (0.0, 86400.0, 86400.0, 172800.0)
    """
    recent = _window(times, "recent", now, DAY)
    reference = _window(times, "reference", recent.since, recent.until - recent.since)
    if reference.until > recent.since:
        raise ValidationFailed.field("reference_until", "the reference window must end "
                                     "at or before recent_since (windows must not overlap)")
    sample = query_integer(args.get("sample"), "sample", DEFAULT_SAMPLE, 100, MAX_SAMPLE)
    return DriftOptions(reference, recent, _threshold(args.get("threshold")),
                        query_alpha(args.get("alpha")), sample)


def _window(times: Mapping[str, float], name: str, end: float, length: float) -> Window:
    """``[since, until)``: ``until`` defaults to ``end``, ``since`` to ``until - length``."""
    until = times.get(f"{name}_until", end)
    since = times.get(f"{name}_since", until - length)
    if not since < until:
        raise ValidationFailed.field(f"{name}_until", f"must be after {name}_since "
                                     "(the window is empty or reversed)")
    return Window(since, until)


def _number(raw: str, field: str, message: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValidationFailed.field(field, message)
    return value


def _threshold(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_THRESHOLD
    message = "must be a PSI threshold, a number in (0, 10] (usual: 0.1 moderate, 0.25 major)"
    value = _number(raw, "threshold", message)
    if not 0 < value <= 10:
        raise ValidationFailed.field("threshold", message)
    return value


