"""L2-regularised reward models on sparse designs: logistic or ridge regression (L-BFGS).

The reward model q(x, a) of the direct and doubly robust estimators. For rewards in
{0, 1} it is a logistic regression, otherwise a ridge (least-squares) regression; both
minimise

    (1/m) * [ sum_i loss(y_i, X_i w + b) + (l2 / 2) * ||w||^2 ]

with an unpenalised intercept b (the scikit-learn convention, C = 1 / l2), by
scipy.optimize L-BFGS-B on the CSR design, with analytic gradients (two sparse
matrix-vector products per evaluation). No scikit-learn at runtime.

Two exact reformulations make L-BFGS fast on hashed designs: all-zero columns are dropped
(their penalised optimum is 0), and the optimiser works on centred, standardised columns
(w = u / s, b = c - mean . w: a change of variables, so the minimiser is the same; the
centring is implicit, so the design stays sparse). This diagonal preconditioning turns
thousands of iterations on raw numeric features into tens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit

Kind = Literal["auto", "logistic", "ridge"]


@dataclass(frozen=True)
class RewardModelConfig:
    """Settings of the reward model.

    Attributes:
        l2: L2 penalty on the weights (scikit-learn's 1 / C); the intercept is not penalised.
        kind: ``"logistic"``, ``"ridge"`` or ``"auto"`` (logistic iff all rewards are 0/1).
        max_iter: L-BFGS iterations at most.
        tol: Projected-gradient tolerance of L-BFGS-B (on the preconditioned mean loss).
        ftol: Relative-decrease tolerance of L-BFGS-B.
    """

    l2: float = 1.0
    kind: Kind = "auto"
    max_iter: int = 1000
    tol: float = 1e-6
    ftol: float = 1e-12

    def __post_init__(self) -> None:
        if not self.l2 > 0:
            raise ValueError(f"l2 must be > 0, got {self.l2}")
        if self.kind not in ("auto", "logistic", "ridge"):
            raise ValueError(f"kind must be auto, logistic or ridge, got {self.kind!r}")


@dataclass(frozen=True, eq=False)
class RewardModel:
    """A fitted linear reward model.

    Attributes:
        coef: ``(d,)`` weights of the design columns.
        intercept: The intercept.
        kind: ``"logistic"`` (predictions are probabilities) or ``"ridge"``.
        converged: Whether L-BFGS met its tolerance.
        n_iter: L-BFGS iterations used.
    """

    coef: np.ndarray
    intercept: float
    kind: Literal["logistic", "ridge"]
    converged: bool = True
    n_iter: int = 0

    def predict(self, design: sp.csr_matrix) -> np.ndarray:
        """``(m,)`` predicted mean rewards for the ``(m, d)`` design."""
        z = design @ self.coef + self.intercept
        return expit(z) if self.kind == "logistic" else z


def fit_reward_model(
    design: sp.csr_matrix, rewards: np.ndarray, config: RewardModelConfig | None = None
) -> RewardModel:
    """Fit the reward model by L-BFGS-B.

    Args:
        design: ``(m, d)`` CSR features of the logged (context, chosen action) pairs.
        rewards: ``(m,)`` observed rewards.
        config: Settings (defaults: l2 = 1, kind chosen from the rewards).

    Returns:
        The fitted model.

    Raises:
        ValueError: On mismatched shapes, no rows, non-finite rewards, or logistic
            regression asked for rewards outside {0, 1}.
    """
    config = config or RewardModelConfig()
    y = np.asarray(rewards, dtype=np.float64)
    kind = _resolve_kind(config.kind, y, design)
    compact, used = _compact_columns(design.tocsr())
    problem = _Problem.of(compact, y, config.l2, kind)
    start = np.zeros(used.shape[0] + 1)
    start[-1] = _initial_intercept(kind, y)
    result = minimize(
        problem.objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": config.max_iter, "gtol": config.tol, "ftol": config.ftol},
    )
    w, b = problem.unpack(result.x)
    coef = np.zeros(design.shape[1])
    coef[used] = w
    return RewardModel(coef, b, kind, bool(result.success), int(result.nit))


@dataclass(frozen=True, eq=False)
class _Problem:
    """The penalised loss in the preconditioned variables ``(u, c)``."""

    x: sp.csr_matrix
    xt: sp.csr_matrix
    y: np.ndarray
    l2: float
    kind: str
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, x: sp.csr_matrix, y: np.ndarray, l2: float, kind: str) -> _Problem:
        m, d = x.shape
        mean = np.bincount(x.indices, weights=x.data, minlength=d) / m
        second = np.bincount(x.indices, weights=x.data**2, minlength=d) / m
        scale = np.sqrt(np.maximum(second - mean**2, 0.0))
        scale[scale < 1e-12] = 1.0
        return cls(x, x.T.tocsr(), y, l2, kind, mean, scale)

    def unpack(self, params: np.ndarray) -> tuple[np.ndarray, float]:
        """Model weights and intercept ``(w, b)`` from ``(u, c)``."""
        w = params[:-1] / self.scale
        return w, float(params[-1] - self.mean @ w)

    def objective(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Penalised mean loss and its gradient with respect to ``(u, c)``."""
        w = params[:-1] / self.scale
        z = self.x @ w + (params[-1] - self.mean @ w)
        if self.kind == "logistic":
            loss = float(np.sum(np.logaddexp(0.0, z) - self.y * z))
            residual = expit(z) - self.y
        else:
            residual = z - self.y
            loss = 0.5 * float(residual @ residual)
        total = residual.sum()
        grad = np.empty_like(params)
        grad[:-1] = (self.xt @ residual - self.mean * total + self.l2 * w) / self.scale
        grad[-1] = total
        m = self.y.shape[0]
        return (loss + 0.5 * self.l2 * float(w @ w)) / m, grad / m


def _compact_columns(design: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Drop all-zero columns; returns the compact design and the kept column numbers."""
    used = np.flatnonzero(np.bincount(design.indices, minlength=design.shape[1]))
    remap = np.zeros(design.shape[1], dtype=np.int64)
    remap[used] = np.arange(used.shape[0])
    shape = (design.shape[0], used.shape[0])
    return sp.csr_matrix((design.data, remap[design.indices], design.indptr), shape=shape), used


def _resolve_kind(kind: Kind, y: np.ndarray, design: sp.spmatrix) -> Literal["logistic", "ridge"]:
    if y.ndim != 1 or design.shape[0] != y.shape[0]:
        raise ValueError(f"design has {design.shape[0]} rows but rewards have shape {y.shape}")
    if y.shape[0] == 0:
        raise ValueError("cannot fit a reward model on zero rows")
    if not np.isfinite(y).all():
        raise ValueError("rewards contain NaN or infinite values")
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    if kind == "logistic" and not binary:
        raise ValueError("logistic reward model needs rewards in {0, 1}")
    if kind == "auto":
        return "logistic" if binary else "ridge"
    return kind


def _initial_intercept(kind: str, y: np.ndarray) -> float:
    mean = float(y.mean())
    if kind == "ridge":
        return mean
    p = min(max(mean, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))
