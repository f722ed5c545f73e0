"""Multiple-testing correction of a report's family of p-values, by statsmodels.

``holm`` (Holm–Bonferroni, family-wise error, the default) or ``bh``
(Benjamini–Hochberg, false discovery rate), computed by
``statsmodels.stats.multitest.multipletests``. ``None`` p-values (degenerate comparisons)
are left out of the family and stay ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from statsmodels.stats.multitest import multipletests

Adjustment = Literal["holm", "bh"]
ADJUSTMENTS: tuple[Adjustment, ...] = ("holm", "bh")
_STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}


def adjust(p_values: Sequence[float | None], method: Adjustment = "holm"
           ) -> tuple[float | None, ...]:
    """Adjusted p-values of the family (``None`` entries pass through).

    Examples:
        >>> adjust([0.01, 0.04, None, 0.03])
        (0.03, 0.06, None, 0.06)
        >>> [round(q, 6) for q in adjust([0.01, 0.04, 0.03], "bh")]
        [0.03, 0.04, 0.04]
    """
    if method not in _STATSMODELS:
        raise ValueError(f"method must be one of {ADJUSTMENTS}, got {method!r}")
    index = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not index:
        return tuple(out)
    raw = [float(p_values[i]) for i in index]  # type: ignore[arg-type]
    _, adjusted, _, _ = multipletests(raw, method=_STATSMODELS[method])
    for i, q in zip(index, adjusted, strict=True):
        out[i] = float(q)
    return tuple(out)
