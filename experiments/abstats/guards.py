"""Guards for a report: sample-ratio mismatch, Holm correction, small-sample warnings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .aggregates import MeanStats
from .results import Reason, StatWarning

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SRMResult:
    """Sample-ratio-mismatch check of the arms' counts against their configured shares.

    Attributes:
        p_value: Chi-square goodness-of-fit p-value, ``None`` when not computable.
        mismatch: ``p_value < threshold``, or traffic reached an arm with share 0.
        expected: Configured shares, normalised to sum to 1.
        observed: Observed counts per arm.
        reason: Why the test could not run normally (``empty``, ``single_arm``,
            ``traffic_to_zero_share_arm``), ``None`` otherwise.
    """

    p_value: float | None
    mismatch: bool
    expected: dict[str, float]
    observed: dict[str, int]
    reason: Reason | None = None

    @property
    def warnings(self) -> tuple[StatWarning, ...]:
        """Report warnings for this check (empty when all is well)."""
        if self.reason is Reason.TRAFFIC_TO_ZERO_SHARE_ARM:
            msg = "decisions were logged for an arm configured with share 0"
            return (StatWarning(str(self.reason), msg),)
        if self.mismatch:
            msg = f"arm counts do not match configured shares (p = {self.p_value:.2g})"
            return (StatWarning("sample_ratio_mismatch", msg),)
        return ()


def srm_test(
    observed: Mapping[str, int],
    shares: Mapping[str, float],
    *,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Chi-square test that arm counts follow the configured traffic shares.

    Arms with share 0 (or missing from ``shares``) are left out of the test; any traffic
    to them is a mismatch by itself (``p_value`` 0). The statistic equals
    ``scipy.stats.chisquare(f_obs, f_exp)`` over the arms with a positive share.

    Args:
        observed: Count per arm (arms missing here count 0).
        shares: Configured share per arm (need not sum to 1).
        threshold: Flag a mismatch when the p-value is below this.

    Returns:
        The check.

    Examples:
        >>> r = srm_test({"a": 5200, "b": 4800}, {"a": 0.5, "b": 0.5})
        >>> r.mismatch, f"{r.p_value:.1e}"
        (True, '6.3e-05')
    """
    if any(share < 0 for share in shares.values()) or not any(shares.values()):
        raise ValueError(f"shares must be non-negative with a positive sum, got {shares!r}")
    arms = list(dict.fromkeys([*shares, *observed]))  # unconfigured arms have share 0
    counts = {arm: int(observed.get(arm, 0)) for arm in arms}
    live = [arm for arm in arms if shares.get(arm, 0) > 0]
    total_share = sum(shares[arm] for arm in live)
    expected = {arm: shares.get(arm, 0) / total_share for arm in arms}
    if any(counts[arm] for arm in arms if arm not in live):
        return SRMResult(0.0, True, expected, counts, Reason.TRAFFIC_TO_ZERO_SHARE_ARM)
    total = sum(counts[arm] for arm in live)
    if total == 0 or len(live) < 2:
        reason = Reason.EMPTY if total == 0 else Reason.SINGLE_ARM
        return SRMResult(None, False, expected, counts, reason)
    f_obs = np.array([counts[arm] for arm in live], dtype=float)
    f_exp = np.array([expected[arm] for arm in live]) * total
    p = float(stats.chisquare(f_obs, f_exp).pvalue)
    return SRMResult(p, p < threshold, expected, counts)


@dataclass(frozen=True, slots=True)
class HolmResult:
    """Holm step-down adjusted p-values and rejections (``None`` p-values pass through)."""

    p_adjusted: tuple[float | None, ...]
    reject: tuple[bool, ...]
    alpha: float


def holm(p_values: Sequence[float | None], *, alpha: float = 0.05) -> HolmResult:
    """Holm–Bonferroni correction for a family of tests.

    The ``i``-th smallest of ``m`` p-values is adjusted to
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; a test is rejected when its adjusted
    p-value is ``<= alpha``, as ``statsmodels.stats.multitest.multipletests(method="holm")``.
    ``None`` entries (degenerate comparisons) are not counted in ``m`` and stay ``None``.

    Examples:
        >>> holm([0.01, 0.04, None, 0.03]).p_adjusted
        (0.03, 0.06, None, 0.06)
    """
    index = [i for i, p in enumerate(p_values) if p is not None]
    raw = np.array([p_values[i] for i in index], dtype=float)
    order = np.argsort(raw, kind="stable")
    steps = raw[order] * np.arange(len(raw), 0, -1)
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(steps))
    adjusted: list[float | None] = [None] * len(p_values)
    for k, pos in enumerate(order):
        adjusted[index[pos]] = float(adjusted_sorted[k])
    reject = tuple(p is not None and p <= alpha for p in adjusted)
    return HolmResult(tuple(adjusted), reject, alpha)


def sample_size_warnings(
    arms: Mapping[str, MeanStats],
    *,
    min_n: int = 100,
    binary: bool = False,
    min_events: int = 10,
) -> list[StatWarning]:
    """Warnings for arms too small for the normal approximations behind the tests.

    Codes: ``empty_arm`` (no data), ``small_sample`` (fewer than ``min_n``
    observations) and, for binary metrics, ``few_events`` (fewer than ``min_events``
    ones or zeros).

    Examples:
        >>> sample_size_warnings({"a": MeanStats(50, 5.0, 5.0)}, binary=True)[0].code
        'small_sample'
    """
    found = []
    for arm, s in arms.items():
        if s.n == 0:
            found.append(StatWarning("empty_arm", f"arm {arm!r} has no observations"))
            continue
        if s.n < min_n:
            msg = f"arm {arm!r} has {s.n} observations (< {min_n}); inference is unreliable"
            found.append(StatWarning("small_sample", msg))
        if binary and min(s.successes, s.n - s.successes) < min_events:
            msg = f"arm {arm!r} has fewer than {min_events} successes or failures"
            found.append(StatWarning("few_events", msg))
    return found
