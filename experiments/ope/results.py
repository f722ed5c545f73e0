"""Result records of off-policy evaluation: intervals, estimates and verdicts.

An :class:`Estimate` carries a point value with its analytic (central-limit) interval and,
when computed, a percentile-bootstrap interval and an anytime-valid confidence sequence.
``Estimate.to_dict`` gives the ``{"value", "ci_low", "ci_high"}`` shape of the OPE report;
:func:`difference_to_dict` gives the ``vs_champion`` shape with its :func:`verdict`.
Degenerate data never raises here: it yields NaN values and a machine-readable ``status``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

from experiments.interval import Interval
from experiments.verdict import from_interval, legacy_label

Verdict = Literal["better", "worse", "inconclusive"]
Status = Literal["ok", "empty", "too_few_rows", "zero_denominator"]
IntervalKind = Literal["analytic", "bootstrap", "sequence"]



@dataclass(frozen=True)
class Estimate:
    """A policy-value (or difference) estimate.

    Attributes:
        value: The point estimate.
        interval: Analytic interval: normal approximation with the sample variance of the
            per-row influence terms (delta method for self-normalised estimators).
        method: Estimator name, e.g. ``"ips"``, ``"snips"``, ``"dr"``, ``"snips-diff"``.
        n: Number of logged decisions used.
        std_error: Estimated standard error of ``value``.
        bootstrap_interval: Percentile interval of a Poisson bootstrap, if requested.
        confidence_sequence: Anytime-valid asymptotic confidence sequence (Waudby-Smith et
            al.), valid under continuous monitoring, if computed.
        status: ``"ok"``, or why value/interval are NaN: ``"empty"``, ``"too_few_rows"``
            (one unit: no variance), ``"zero_denominator"`` (all importance weights zero).
        n_units: Number of units (independent clusters of decisions) behind the variance;
            equals ``n`` when each decision is a unit of its own.
    """

    value: float
    interval: Interval
    method: str
    n: int
    std_error: float
    bootstrap_interval: Interval | None = None
    confidence_sequence: Interval | None = None
    status: Status = "ok"
    n_units: int | None = None

    def pick(self, kind: IntervalKind = "analytic") -> Interval:
        """The interval of the given kind (an undefined one when it was not computed)."""
        chosen = {
            "analytic": self.interval,
            "bootstrap": self.bootstrap_interval,
            "sequence": self.confidence_sequence,
        }[kind]
        return chosen if chosen is not None else Interval.undefined(self.interval.level)

    def to_dict(self, kind: IntervalKind = "analytic") -> dict[str, float | None]:
        """Report shape ``{"value", "ci_low", "ci_high"}``; NaN becomes None (JSON null)."""
        interval = self.pick(kind)
        return {
            "value": _json_float(self.value),
            "ci_low": _json_float(interval.lower),
            "ci_high": _json_float(interval.upper),
        }


def verdict(interval: Interval) -> Verdict:
    """Verdict on a difference (candidate minus champion) from its interval.

    Args:
        interval: Interval of the difference.

    Returns:
        ``"better"`` if the lower bound is above 0, ``"worse"`` if the upper bound is below
        0, otherwise (including undefined bounds) ``"inconclusive"``: the words of
        :func:`experiments.verdict.legacy_label` for the one verdict function.
    """
    centre = (interval.lower + interval.upper) / 2
    return cast(Verdict, legacy_label(from_interval("ope", None, centre, interval)))


def difference_to_dict(
    difference: Estimate, kind: IntervalKind = "analytic"
) -> dict[str, Any]:
    """Report shape of ``vs_champion``: ``{"diff", "ci_low", "ci_high", "verdict"}``, plus
    ``decision`` (the one verdict of :mod:`experiments.verdict`: ship, keep_running...)."""
    interval = difference.pick(kind)
    decision = from_interval("ope", None, difference.value, interval)
    return {
        "diff": _json_float(difference.value),
        "ci_low": _json_float(interval.lower),
        "ci_high": _json_float(interval.upper),
        "verdict": legacy_label(decision),
        "decision": decision.verdict,
        "decision_reason": decision.reason,
    }


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
