"""Importance-weight diagnostics of a candidate policy on a log (streaming, mergeable).

- effective sample size (Kish): ESS = (sum w)^2 / sum w^2, the number of on-policy rows the
  weighted log is worth; small ESS means IPS-type estimates rest on few rows;
- maximum and mean importance weight (the mean should be near 1 when the candidate is
  supported by the logging policy);
- unsupported share: the fraction of logged rows whose action the candidate never takes,
  pi(a_i | x_i) = 0 (those rows inform IPS only through their zero weight);
- minimum logged propensity (small values make weights, and variances, explode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from experiments.ope.inputs import LoggedBatch


@dataclass(frozen=True)
class WeightDiagnostics:
    """Running sums of the importance weights ``w_i = pi(a_i|x_i) / mu(a_i|x_i)``.

    Attributes:
        n: Rows seen.
        sum_w: Sum of weights.
        sum_w2: Sum of squared weights.
        max_w: Largest weight (0 when empty).
        n_unsupported: Rows with pi(a_i | x_i) = 0.
        min_propensity: Smallest logged propensity (inf when empty).
    """

    n: int = 0
    sum_w: float = 0.0
    sum_w2: float = 0.0
    max_w: float = 0.0
    n_unsupported: int = 0
    min_propensity: float = math.inf

    def add(self, batch: LoggedBatch) -> WeightDiagnostics:
        """Diagnostics that have also seen ``batch``."""
        if batch.n == 0:
            return self
        w = batch.weights
        return self + WeightDiagnostics(
            n=batch.n,
            sum_w=float(w.sum()),
            sum_w2=float(w @ w),
            max_w=float(w.max()),
            n_unsupported=int(np.count_nonzero(batch.target_prob_chosen == 0)),
            min_propensity=float(batch.logged_propensity.min()),
        )

    def merge(self, other: WeightDiagnostics) -> WeightDiagnostics:
        """Diagnostics of the union of two disjoint sets of rows."""
        return replace(
            self,
            n=self.n + other.n,
            sum_w=self.sum_w + other.sum_w,
            sum_w2=self.sum_w2 + other.sum_w2,
            max_w=max(self.max_w, other.max_w),
            n_unsupported=self.n_unsupported + other.n_unsupported,
            min_propensity=min(self.min_propensity, other.min_propensity),
        )

    __add__ = merge

    @property
    def ess(self) -> float:
        """Kish effective sample size (sum w)^2 / sum w^2 (0 if all weights are 0)."""
        return self.sum_w**2 / self.sum_w2 if self.sum_w2 > 0 else 0.0

    @property
    def mean_weight(self) -> float:
        """Mean importance weight (NaN when empty)."""
        return self.sum_w / self.n if self.n else math.nan

    @property
    def unsupported_share(self) -> float:
        """Share of rows where the candidate never takes the logged action (NaN if empty)."""
        return self.n_unsupported / self.n if self.n else math.nan

    def to_dict(self) -> dict[str, float | int | None]:
        """Report fields; non-finite values become None."""
        values = {
            "n": self.n,
            "ess": self.ess,
            "max_weight": self.max_w,
            "mean_weight": self.mean_weight,
            "unsupported_share": self.unsupported_share,
            "min_propensity": self.min_propensity,
        }
        return {k: v if math.isfinite(v) else None for k, v in values.items()}
