"""The range of values the reports analyse: finite numbers beyond it are counted at it.

The reward API takes any finite number, so a value such as 1e300 (or 1e-300) can be
stored. The reports square values (sums of squares, Welch-Satterthwaite's x**4, the OPE
reward model's least squares): PostgreSQL refuses the overflow (underflow) of SUM(x * x),
SQLite and numpy sum to infinity, and the report failed as a whole. They count a value
beyond ±VALUE_BOUND at the bound and a non-zero one within ±1/VALUE_BOUND as 0, and say so
(warning ``values_bounded``): x**4 then stays finite, and no real reward comes near either.
Exports of the log (``tailor export-log``) keep the values as stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

VALUE_BOUND = 1e50
WARNING = "values_bounded"


def bounded(value: Any) -> sa.ColumnElement[float]:
    """SQL: ``value`` within ``±VALUE_BOUND``, and 0 where it is closer to 0 than
    ``1/VALUE_BOUND``."""
    return sa.case((value > VALUE_BOUND, VALUE_BOUND), (value < -VALUE_BOUND, -VALUE_BOUND),
                   (sa.func.abs(value) < 1 / VALUE_BOUND, 0.0), else_=value)


def bounded_array(values: np.ndarray) -> np.ndarray:
    """numpy: as :func:`bounded`.

    Examples:
        >>> bounded_array(np.array([1e300, -2e60, 3e-300, 2.5])).tolist()
        [1e+50, -1e+50, 0.0, 2.5]
    """
    clipped = np.clip(values, -VALUE_BOUND, VALUE_BOUND)
    return np.where(np.abs(clipped) < 1 / VALUE_BOUND, 0.0, clipped)


def beyond(values: np.ndarray) -> bool:
    """Whether any value lies at or beyond ``±VALUE_BOUND`` (counted at the bound).

    Examples:
        >>> beyond(np.array([1.0, -1e51])), beyond(np.array([1e-300]))
        (True, False)
    """
    return bool(np.any(np.abs(values) >= VALUE_BOUND))


def warning_message(what: str) -> str:
    """The text of warning ``values_bounded`` for ``what`` (a metric, the rewards)."""
    return (f"{what}: some values lie beyond ±{VALUE_BOUND:g}; they are counted as "
            f"±{VALUE_BOUND:g} (values closer to 0 than {1 / VALUE_BOUND:g} as 0), so that "
            "sums of squares stay finite")
