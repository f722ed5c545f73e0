"""Logged bandit feedback plus one candidate policy, validated once at construction.

A :class:`LoggedBatch` holds n logged decisions with up to K actions each. Variable action
sets are padded to K columns and described by a boolean ``mask``. Every estimator reads
its per-row terms from a batch, so the checks here (shapes, propensities in (0, 1], target
probabilities that sum to 1 over the mask, no NaN) run once, with a ``ValueError`` that
names the problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import cast

import numpy as np

PMF_ATOL = 1e-6


@dataclass(frozen=True, eq=False)
class LoggedBatch:
    """Logged decisions and a candidate (target) policy evaluated on them.

    Attributes:
        rewards: ``(n,)`` observed rewards, finite.
        logged_propensity: ``(n,)`` probability the logging policy gave the chosen action,
            in (0, 1].
        chosen: ``(n,)`` integer column of the chosen action, in ``[0, K)`` and in the mask.
        target_pmf: ``(n, K)`` candidate policy probabilities; non-negative, zero outside
            the mask, each row summing to 1 within ``pmf_atol``.
        mask: ``(n, K)`` boolean, True where the action was offered; None means all True.
        q_hat: ``(n, K)`` optional reward-model predictions; must be finite in the mask
            (values outside the mask are ignored).
        pmf_atol: Tolerance on the row sums of ``target_pmf``.

    Example:
        >>> b = LoggedBatch(rewards=[1.0, 0.0], logged_propensity=[0.5, 0.5],
        ...                 chosen=[0, 1], target_pmf=[[1.0, 0.0], [1.0, 0.0]])
        >>> b.weights.tolist()
        [2.0, 0.0]
    """

    rewards: np.ndarray
    logged_propensity: np.ndarray
    chosen: np.ndarray
    target_pmf: np.ndarray
    mask: np.ndarray | None = None
    q_hat: np.ndarray | None = None
    pmf_atol: float = PMF_ATOL

    def __post_init__(self) -> None:
        conv = _convert(self)
        for name, value in conv.items():
            object.__setattr__(self, name, value)
        _validate(self)

    @property
    def n(self) -> int:
        """Number of logged decisions."""
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        """K, the padded number of action columns."""
        return int(self.target_pmf.shape[1])

    @cached_property
    def target_prob_chosen(self) -> np.ndarray:
        """``(n,)`` candidate probability of the logged action, pi(a_i | x_i)."""
        return self.target_pmf[np.arange(self.n), self.chosen]

    @cached_property
    def weights(self) -> np.ndarray:
        """``(n,)`` importance weights pi(a_i | x_i) / mu(a_i | x_i)."""
        return self.target_prob_chosen / self.logged_propensity

    @cached_property
    def q_chosen(self) -> np.ndarray:
        """``(n,)`` reward-model prediction for the logged action, q(x_i, a_i)."""
        return self._require_q()[np.arange(self.n), self.chosen]

    @cached_property
    def q_target(self) -> np.ndarray:
        """``(n,)`` model value of the candidate, sum_a pi(a | x_i) q(x_i, a) over the mask."""
        q = np.where(cast(np.ndarray, self.mask), self._require_q(), 0.0)
        return np.einsum("ij,ij->i", self.target_pmf, q)

    def with_target(self, target_pmf: np.ndarray, q_hat: np.ndarray | None = None) -> LoggedBatch:
        """The same log with another candidate policy (and optionally another q_hat)."""
        return LoggedBatch(
            rewards=self.rewards,
            logged_propensity=self.logged_propensity,
            chosen=self.chosen,
            target_pmf=target_pmf,
            mask=self.mask,
            q_hat=self.q_hat if q_hat is None else q_hat,
            pmf_atol=self.pmf_atol,
        )

    def rows(self, index: slice | np.ndarray) -> LoggedBatch:
        """A batch of the selected rows (a slice or an index array)."""
        q = None if self.q_hat is None else self.q_hat[index]
        return LoggedBatch(
            rewards=self.rewards[index],
            logged_propensity=self.logged_propensity[index],
            chosen=self.chosen[index],
            target_pmf=self.target_pmf[index],
            mask=cast(np.ndarray, self.mask)[index],
            q_hat=q,
            pmf_atol=self.pmf_atol,
        )

    def chunks(self, size: int) -> Iterator[LoggedBatch]:
        """Consecutive batches of at most ``size`` rows, for streaming estimators."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        for start in range(0, self.n, size):
            yield self.rows(slice(start, start + size))

    def same_log(self, other: LoggedBatch) -> bool:
        """Whether ``other`` holds the same logged rows (rewards, choices, propensities)."""
        return all(
            np.array_equal(a, b)
            for a, b in (
                (self.rewards, other.rewards),
                (self.chosen, other.chosen),
                (self.logged_propensity, other.logged_propensity),
                (cast(np.ndarray, self.mask), cast(np.ndarray, other.mask)),
            )
        )

    def _require_q(self) -> np.ndarray:
        if self.q_hat is None:
            raise ValueError("this estimator needs q_hat (reward-model predictions), got None")
        return self.q_hat


def _convert(batch: LoggedBatch) -> dict[str, np.ndarray | None]:
    pmf = np.asarray(batch.target_pmf, dtype=np.float64)
    if pmf.ndim != 2:
        raise ValueError(f"target_pmf must be 2-D of shape (n, K), got shape {pmf.shape}")
    mask = np.ones(pmf.shape, bool) if batch.mask is None else np.asarray(batch.mask)
    chosen = np.asarray(batch.chosen)
    if chosen.dtype == bool or not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(f"chosen must hold integer action columns, got dtype {chosen.dtype}")
    q_hat = None if batch.q_hat is None else np.asarray(batch.q_hat, dtype=np.float64)
    return {
        "rewards": np.asarray(batch.rewards, dtype=np.float64),
        "logged_propensity": np.asarray(batch.logged_propensity, dtype=np.float64),
        "chosen": chosen.astype(np.intp, copy=False),
        "target_pmf": pmf,
        "mask": mask,
        "q_hat": q_hat,
    }


def _validate(b: LoggedBatch) -> None:
    _check_shapes(b)
    _check_values(b)
    _check_pmf(b)


def _check_shapes(b: LoggedBatch) -> None:
    n, k = b.target_pmf.shape
    for name in ("rewards", "logged_propensity", "chosen"):
        shape = getattr(b, name).shape
        if shape != (n,):
            raise ValueError(f"{name} must have shape (n,) = ({n},), got {shape}")
    mask = cast(np.ndarray, b.mask)  # _convert replaced None with an array
    if mask.shape != (n, k) or mask.dtype != bool:
        raise ValueError(
            f"mask must be boolean of shape {(n, k)}, got {mask.dtype} {mask.shape}"
        )
    if b.q_hat is not None and b.q_hat.shape != (n, k):
        raise ValueError(f"q_hat must have shape {(n, k)}, got {b.q_hat.shape}")
    if k < 1:
        raise ValueError("target_pmf must have at least one action column (K >= 1)")


def _check_values(b: LoggedBatch) -> None:
    _first_bad("rewards", ~np.isfinite(b.rewards), "is not finite")
    p = b.logged_propensity
    _first_bad("logged_propensity", ~((p > 0) & (p <= 1)), "is outside (0, 1]", p)
    k = b.n_actions
    _first_bad("chosen", (b.chosen < 0) | (b.chosen >= k), f"is outside [0, {k})", b.chosen)
    offered = cast(np.ndarray, b.mask)[np.arange(b.n), b.chosen]
    _first_bad("chosen", ~offered, "is an action outside the mask", b.chosen)
    if b.q_hat is not None:
        _first_bad("q_hat", (~np.isfinite(b.q_hat) & cast(np.ndarray, b.mask)).any(axis=1),
                   "is NaN or infinite")


def _check_pmf(b: LoggedBatch) -> None:
    pmf = b.target_pmf
    _first_bad("target_pmf", np.isnan(pmf).any(axis=1), "contains NaN")
    _first_bad(
        "target_pmf",
        ((pmf < 0) | ~np.isfinite(pmf)).any(axis=1),
        "has a negative or infinite entry",
    )
    _first_bad("target_pmf", (pmf * ~cast(np.ndarray, b.mask) > 0).any(axis=1),
               "puts probability outside the mask")
    total = pmf.sum(axis=1)
    bad = np.abs(total - 1.0) > b.pmf_atol
    _first_bad("target_pmf", bad, f"does not sum to 1 (atol {b.pmf_atol:g})", total)


def _first_bad(name: str, bad: np.ndarray, problem: str, values: np.ndarray | None = None) -> None:
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    shown = "" if values is None else f" (value {values[row]!r})"
    raise ValueError(f"{name}: row {row} {problem}{shown}; {int(bad.sum())} bad row(s)")
