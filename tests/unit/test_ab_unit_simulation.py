"""Short version of bench/ab_simulation.py: returning units with known truth.

The bench runs 4,000 replications (numbers in BENCHMARKS.md); here 120 per cell, with
bounds wide enough for that size (binomial sd of a 5% rate over 120 runs is 2 points).
"""

from __future__ import annotations

from bench.ab_simulation import run


def test_unit_level_analysis_controls_errors_where_the_decision_level_one_did_not() -> None:
    found = run(reps=120, seed=7)
    after, before = found["after"], found["before"]
    assert after.fixed_fpr <= 0.10
    assert after.sequential_fpr <= 0.05
    assert after.srm_alarms <= 0.01
    assert after.coverage is not None and after.coverage >= 0.90
    # The decision-level analysis of the same logs: false positives, SRM alarms, undercoverage.
    assert before.fixed_fpr >= 0.15 and before.srm_alarms >= 0.15
    assert before.coverage is not None and before.coverage <= 0.85
