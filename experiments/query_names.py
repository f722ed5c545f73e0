"""Query strings of the report endpoints: every name known, each single-valued one given once.

A misspelt parameter (``?segmnet=country``) or one the report does not have (``?alpha=``,
``?since=`` on the A/B report) was ignored, so the analyst read an unsegmented, unfiltered
report believing it was what they asked for; and of a repeated one (``?lift=0.1&lift=0.2``)
the first silently won. Both are a 400 naming the parameter instead.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from experiments.errors import ValidationFailed


def check_names(args: Mapping[str, Any], known: Collection[str],
                repeatable: Collection[str] = ()) -> None:
    """Raise a 400 naming the first unknown or repeated query parameter.

    Args:
        args: The query parameters; a ``MultiDict`` (Flask's ``request.args``) is checked
            for repeats too, a plain mapping cannot hold any.
        known: Every parameter name the endpoint reads.
        repeatable: Names that may be given several times (``candidates``).

    Examples:
        >>> check_names({"lift": "0.1"}, ("lift", "top"))
        >>> check_names({"lfit": "0.1"}, ("lift", "top"))
        Traceback (most recent call last):
        ...
        experiments.errors.ValidationFailed: lfit: unknown parameter; did you mean `lift`?
    """
    for name in args:
        if name not in known:
            raise _unknown(name, known)
    getlist = getattr(args, "getlist", None)
    for name in args:
        if getlist is not None and name not in repeatable and len(getlist(name)) > 1:
            raise ValidationFailed.field(name, "given more than once; give it once")


def _unknown(name: str, known: Collection[str]) -> ValidationFailed:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(sorted(known))}"
    error = ValidationFailed.field(name, f"unknown parameter; {hint}")
    if close:
        error.details[0]["suggestion"] = close[0]
    return error


def query_integer(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]`` (``default`` when absent or empty).

    ASCII digits only: ``str.isdigit()`` accepts "²", which ``int()`` refuses.

    Examples:
        >>> query_integer("12", "top", 10, 1, 50), query_integer(None, "top", 10, 1, 50)
        (12, 10)
    """
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationFailed.field(name, f"must be an integer from {low} to {high}")
    return int(raw)


def query_alpha(raw: str | None) -> float | None:
    """A significance level in (0, 0.5] (None when absent or empty: the experiment's).

    Examples:
        >>> query_alpha("0.1"), query_alpha("")
        (0.1, None)
    """
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
