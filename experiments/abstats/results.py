"""Typed result records shared by the A/B statistics (the analysis half's outputs).

Every record is a frozen dataclass with snake_case fields. Degenerate data never raises:
a result carries a machine-readable ``reason`` (a :class:`Reason`, which is a ``str``) and
the fields that cannot be computed are ``None`` -- never NaN, so results serialise to JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from experiments.interval import Interval as Interval  # the A/B results carry it


class Reason(StrEnum):
    """Machine-readable codes for degenerate data.

    Examples:
        >>> Reason.EMPTY == "empty"
        True
    """

    EMPTY = "empty"
    SINGLE_OBSERVATION = "single_observation"
    ZERO_VARIANCE = "zero_variance"
    ZERO_CONTROL_MEAN = "zero_control_mean"
    SINGLE_ARM = "single_arm"
    TRAFFIC_TO_ZERO_SHARE_ARM = "traffic_to_zero_share_arm"


@dataclass(frozen=True, slots=True)
class StatWarning:
    """A report warning: ``code`` is machine-readable, ``message`` is for people."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """Mean of one metric in one arm with its confidence interval.

    Attributes:
        n: Number of observations.
        mean: Sample mean, ``None`` when ``n == 0``.
        ci: t interval (Wilson for proportions), ``None`` when undefined.
        method: ``"t"`` or ``"wilson"``.
        reason: Why the data are degenerate, ``None`` when they are not.
    """

    n: int
    mean: float | None
    ci: Interval | None
    method: str
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Always-valid ("sequential") inference for a difference of means at one look.

    Attributes:
        p_value: Sequential p-value; valid however often and whenever one peeks.
        ci: Confidence sequence for the difference at this look.
        reason: Why the data are degenerate, ``None`` when they are not.
    """

    p_value: float | None
    ci: Interval | None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment versus control for one metric (``diff = treatment - control``).

    Attributes:
        method: ``"welch"`` (means) or ``"z_pooled"`` / ``"z_unpooled"`` (proportions;
            the p-value is the z-test, the interval is Newcombe's hybrid score interval).
        diff: Difference of means, ``None`` when an arm is empty.
        ci: Fixed-horizon confidence interval for ``diff``.
        p_value: Fixed-horizon two-sided p-value.
        significant: ``p_value < alpha``; ``False`` when the p-value is undefined.
        lift: Relative lift ``treatment / control - 1``.
        lift_ci: Delta-method confidence interval for ``lift``.
        p_value_sequential: Always-valid p-value (mSPRT, see ``sequential``) at this
            look; ``sequential_path`` gives its running minimum over daily looks.
        ci_sequential: Confidence sequence for ``diff`` at this look.
        reason: Why ``diff`` statistics are degenerate, ``None`` when they are not.
        lift_reason: Why ``lift`` statistics are degenerate, ``None`` when they are not.
    """

    method: str
    diff: float | None
    ci: Interval | None
    p_value: float | None
    significant: bool
    lift: float | None
    lift_ci: Interval | None
    p_value_sequential: float | None
    ci_sequential: Interval | None
    reason: Reason | None = None
    lift_reason: Reason | None = None
