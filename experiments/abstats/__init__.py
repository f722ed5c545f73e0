"""Pure A/B statistics for Tailor's reports: no Flask, no database.

Aggregation: :class:`MeanStats` holds ``COUNT``, ``SUM`` and ``SUM`` of squares of a metric
and adds together. Analysis: pure functions of those statistics return frozen result
records; degenerate data yield a :class:`Reason` code instead of an exception.
Simulations that check coverage and peeking live in ``experiments.abstats.simulation``
(``python -m experiments.abstats.simulation`` prints them).

Examples:
    >>> from experiments.abstats import MeanStats, compare_proportions, srm_test
    >>> champion = MeanStats.from_aggregates(5012, 506, 506)
    >>> bandit = MeanStats.from_aggregates(4988, 638, 638)
    >>> r = compare_proportions(champion, bandit)
    >>> round(r.diff, 3), r.significant, r.method
    (0.027, True, 'z_pooled')
    >>> srm_test({"champion": 5012, "bandit": 4988}, {"champion": 0.5, "bandit": 0.5}).mismatch
    False
"""

from .aggregates import MeanStats, is_zero_one
from .compare import compare_means, compare_proportions
from .guards import HolmResult, SRMResult, holm, sample_size_warnings, srm_test
from .power import minimum_detectable_lift, power_at_lift, sample_size_per_arm
from .ratio import RatioDifference, RatioStats, ratio_difference
from .results import (
    ArmSummary,
    Comparison,
    Interval,
    Reason,
    SequentialResult,
    StatWarning,
)
from .segments import compare, compare_segments
from .sequential import (
    DEFAULT_EFFECT_SIZE,
    mixing_variance,
    sequential_cumulative,
    sequential_path,
    sequential_test,
)
from .summary import summarize

__all__ = [
    "DEFAULT_EFFECT_SIZE",
    "ArmSummary",
    "Comparison",
    "HolmResult",
    "Interval",
    "MeanStats",
    "RatioDifference",
    "RatioStats",
    "Reason",
    "SRMResult",
    "SequentialResult",
    "StatWarning",
    "compare",
    "compare_means",
    "compare_proportions",
    "compare_segments",
    "holm",
    "is_zero_one",
    "minimum_detectable_lift",
    "mixing_variance",
    "power_at_lift",
    "ratio_difference",
    "sample_size_per_arm",
    "sample_size_warnings",
    "sequential_cumulative",
    "sequential_path",
    "sequential_test",
    "srm_test",
    "summarize",
]
