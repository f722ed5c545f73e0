"""The one interval record shared by the A/B statistics and the off-policy estimators."""

from __future__ import annotations

from dataclasses import dataclass

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Interval:
    """A two-sided interval ``[lower, upper]`` with its nominal coverage ``level``.

    Attributes:
        lower: Lower bound (NaN when undefined).
        upper: Upper bound (NaN when undefined).
        level: Nominal coverage, e.g. 0.95.

    Examples:
        >>> Interval(-0.5, 1.5, 0.95).contains(0.0)
        True
    """

    lower: float
    upper: float
    level: float = 0.95

    @classmethod
    def undefined(cls, level: float = 0.95) -> Interval:
        """An interval whose bounds could not be computed (too little data)."""
        return cls(NAN, NAN, level)

    def contains(self, value: float) -> bool:
        """Whether ``lower <= value <= upper`` (False when the bounds are NaN)."""
        return self.lower <= value <= self.upper

    @property
    def width(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower
