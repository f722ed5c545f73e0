"""Cross-fitted reward-model predictions q_hat for DM and DR (k-fold cross-fitting).

Cross-fitting (Chernozhukov et al. 2018, "double/debiased machine learning"): the logged
decisions are split into k folds; for each fold a reward model is fitted on the other
k - 1 folds and predicts q(x_i, a) for every offered action of the held-out decisions.
No row's prediction has seen its own reward, so the DR correction term stays centred
(an in-sample model would overfit the very residuals DR averages). Folds come from a
stable hash of the event id (:func:`hash_folds`) or a seeded generator
(:func:`random_folds`). Predictions are made in chunks of decisions to bound memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from experiments.ope.featurize import EncodedActions, HashedRows, HashingFeaturizer
from experiments.ope.reward_model import RewardModel, RewardModelConfig, fit_reward_model


@dataclass(frozen=True, eq=False)
class EncodedLog:
    """Encoded contexts and offered actions of n logged decisions.

    Attributes:
        contexts: n rows of hashed context features.
        actions: The action table.
        action_index: ``(n, K)`` action-table row of each offered action, -1 as padding;
            column j is action column j of the estimators' ``(n, K)`` arrays.
    """

    contexts: HashedRows
    actions: EncodedActions
    action_index: np.ndarray

    def __post_init__(self) -> None:
        n, index = self.contexts.n_rows, self.action_index
        if index.ndim != 2 or index.shape[0] != n:
            raise ValueError(f"action_index must have shape ({n}, K), got {index.shape}")
        if index.size and (index.max() >= len(self.actions.ids) or index.min() < -1):
            raise ValueError("action_index holds rows outside the action table")

    @property
    def mask(self) -> np.ndarray:
        """``(n, K)`` True where an action was offered."""
        return self.action_index >= 0


@dataclass(frozen=True, eq=False)
class CrossFit:
    """Cross-fitted predictions.

    Attributes:
        q_hat: ``(n, K)`` out-of-fold predictions (0 in padding columns).
        folds: ``(n,)`` fold of each decision.
        models: One model per fold, fitted on the other folds.
    """

    q_hat: np.ndarray
    folds: np.ndarray
    models: tuple[RewardModel, ...]


def hash_folds(keys: Sequence[str], k: int = 2) -> np.ndarray:
    """``(n,)`` deterministic folds from a stable hash (CRC-32) of each key, e.g. event ids."""
    _check_k(k)
    return np.array([zlib.crc32(f"fold:{key}".encode()) % k for key in keys], dtype=np.int64)


def random_folds(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(n,)`` balanced random folds (sizes differ by at most one) from ``rng``."""
    _check_k(k)
    return rng.permutation(np.arange(n) % k)


def chosen_design(
    featurizer: HashingFeaturizer, log: EncodedLog, chosen: np.ndarray, rows: np.ndarray
) -> sp.csr_matrix:
    """Design of the logged (context, chosen action) pairs of ``rows``."""
    action_rows = log.action_index[rows, np.asarray(chosen)[rows]]
    if (action_rows < 0).any():
        raise ValueError("a chosen action is a padding column of action_index")
    return featurizer.design(log.contexts, log.actions, rows, action_rows)


def predict_q_hat(
    featurizer: HashingFeaturizer,
    model: RewardModel,
    log: EncodedLog,
    rows: np.ndarray,
    chunk_size: int = 50_000,
) -> np.ndarray:
    """``(len(rows), K)`` predictions for every offered action of ``rows`` (0 in padding)."""
    out = np.zeros((rows.shape[0], log.action_index.shape[1]))
    for start in range(0, rows.shape[0], chunk_size):
        part = rows[start : start + chunk_size]
        index = log.action_index[part]
        local, column = np.nonzero(index >= 0)
        design = featurizer.design(log.contexts, log.actions, part[local], index[local, column])
        out[start + local, column] = model.predict(design)
    return out


def cross_fit_q_hat(
    featurizer: HashingFeaturizer,
    log: EncodedLog,
    chosen: np.ndarray,
    rewards: np.ndarray,
    folds: np.ndarray,
    config: RewardModelConfig | None = None,
    chunk_size: int = 50_000,
) -> CrossFit:
    """Out-of-fold reward-model predictions for all offered actions.

    Args:
        featurizer: Maps (context, action) pairs to hashed features.
        log: Encoded contexts and offered actions, n decisions.
        chosen: ``(n,)`` column of the logged action.
        rewards: ``(n,)`` observed rewards.
        folds: ``(n,)`` fold labels 0..k-1 with k >= 2, each fold non-empty.
        config: Reward-model settings.
        chunk_size: Decisions per prediction chunk (bounds memory).

    Returns:
        The predictions, folds and per-fold models.
    """
    folds = np.asarray(folds)
    k = _check_folds(folds, log.contexts.n_rows)
    rewards = np.asarray(rewards, dtype=np.float64)
    q_hat = np.zeros(log.action_index.shape)
    models = []
    for fold in range(k):
        train, held_out = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        design = chosen_design(featurizer, log, chosen, train)
        model = fit_reward_model(design, rewards[train], config)
        q_hat[held_out] = predict_q_hat(featurizer, model, log, held_out, chunk_size)
        models.append(model)
    return CrossFit(q_hat, folds, tuple(models))


def _check_k(k: int) -> None:
    if k < 2:
        raise ValueError(f"cross-fitting needs k >= 2 folds, got {k}")


def _check_folds(folds: np.ndarray, n: int) -> int:
    if folds.shape != (n,):
        raise ValueError(f"folds must have shape ({n},), got {folds.shape}")
    k = int(folds.max()) + 1 if n else 0
    _check_k(k)
    if folds.min() < 0 or np.bincount(folds, minlength=k).min() == 0:
        raise ValueError(f"folds must be labels 0..{k - 1} with every fold non-empty")
    return k
