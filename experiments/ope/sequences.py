"""Anytime-valid asymptotic confidence sequences (Waudby-Smith et al., Robbins normal mixture).

A confidence sequence (C_t) covers the target at *all* sample sizes t simultaneously with
probability >= level, so an analyst may look at a running OPE report as often as they like
and stop whenever they like. We use the *asymptotic confidence sequence* of Waudby-Smith,
Arnold, Wu & Ramdas, "Time-uniform central limit theory and asymptotic confidence
sequences" (Annals of Statistics, 2024), Theorem 2.2, with the two-sided Robbins normal
mixture boundary:

    theta_t +/- sigma_t * sqrt( 2 (t rho^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 + 1) / alpha ) )

where sigma_t is the sample standard deviation of the per-row (influence) terms and
rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / t_star makes the boundary tightest at the
design size t_star, which must be chosen before looking at the data.

Assumptions: rows are i.i.d. (the logging policy is fixed given the context) and the
per-row terms have finite 2 + delta moments, e.g. bounded rewards and bounded importance
weights (propensities bounded away from 0). The guarantee is asymptotic, like the CLT
interval, not a finite-sample one; it is the time-uniform analogue of the Wald interval.
For self-normalised IPS the terms are the delta-method linearisation
(w_i r_i - theta w_i) / mean(w).
"""

from __future__ import annotations

import math

from experiments.ope.results import Interval


def mixture_rho_squared(design_n: int, alpha: float) -> float:
    """rho^2 of the normal mixture that minimises the boundary width at ``design_n``."""
    log_term = -2.0 * math.log(alpha)
    return (log_term + math.log(log_term + 1.0)) / design_n


def asymptotic_cs_half_width(std: float, n: int, level: float, design_n: int) -> float:
    """Half-width of the two-sided asymptotic confidence sequence at sample size ``n``.

    Args:
        std: Sample standard deviation of the per-row influence terms.
        n: Current number of rows.
        level: Coverage uniformly over time, e.g. 0.95.
        design_n: Sample size at which the sequence is tightest (fixed in advance).
    """
    alpha = 1.0 - level
    rho2 = mixture_rho_squared(design_n, alpha)
    scale = n * rho2 + 1.0
    return std * math.sqrt(2.0 * scale / (n * n * rho2) * math.log(math.sqrt(scale) / alpha))


def asymptotic_confidence_sequence(
    value: float, std: float, n: int, level: float = 0.95, design_n: int = 10_000
) -> Interval:
    """The asymptotic confidence sequence of Waudby-Smith et al. at sample size ``n``.

    Args:
        value: Current point estimate (the running mean of the influence terms).
        std: Sample standard deviation of the per-row influence terms.
        n: Current number of rows.
        level: Time-uniform coverage.
        design_n: Sample size at which the sequence is tightest.

    Returns:
        The interval, undefined when ``n < 2`` or ``std`` is not finite.
    """
    if n < 2 or not math.isfinite(std) or not math.isfinite(value):
        return Interval.undefined(level)
    half = asymptotic_cs_half_width(std, n, level, design_n)
    return Interval(value - half, value + half, level)
