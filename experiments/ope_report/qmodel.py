"""The reward model q(x, a) of DM and DR, fitted on the log with 2-fold cross-fitting.

Decisions are split into two folds by a stable hash of their unit (their event id when
they have none; :func:`experiments.ope.hash_folds`), so all of a unit's decisions share a
fold; the model that predicts a decision's rewards was fitted on the other fold only, so
DR's correction term stays centred, per unit too (see :mod:`experiments.ope.crossfit`).
The model is the OPE package's L2-regularised logistic
(0/1 rewards) or ridge regression over hashed context, action and context x action
features (:class:`experiments.ope.HashingFeaturizer`).

Memory stays bounded: a first pass streams the log and keeps at most ``max_rows`` training
rows (a deterministic hash sample of the event ids when the log is larger); the report's
main pass then predicts chunk by chunk. Logs too small to fit (fewer than ``MIN_ROWS``
decisions or an empty fold) get a constant model: the mean reward.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy.orm import Session

from bandits.features import NO_TYPES, FeatureTypes
from experiments.final_decisions import Scope
from experiments.ope import (
    EncodedActions,
    EncodedLog,
    HashingFeaturizer,
    RewardModel,
    RewardModelConfig,
    fit_reward_model,
    hash_folds,
    predict_q_hat,
)
from experiments.ope_report.scope import Chunk, chunks

FOLDS = 2
MIN_ROWS = 20
MAX_TRAIN_ROWS = 200_000


@dataclass(frozen=True, eq=False)
class QModel:
    """Cross-fitted reward models (or a constant) that predict q_hat for chunks.

    Attributes:
        featurizer: The hashing featurizer.
        models: Model ``f`` was fitted without fold ``f`` and predicts it (empty: constant).
        constant: The prediction of the constant model.
        train_rows: Decisions the models were fitted on.
    """

    featurizer: HashingFeaturizer
    models: tuple[RewardModel, ...]
    constant: float
    train_rows: int

    def q_hat(self, chunk: Chunk) -> np.ndarray:
        """``(n, K)`` out-of-fold predictions for every offered action (0 in padding)."""
        if not self.models:
            return np.where(chunk.mask, self.constant, 0.0)
        folds = hash_folds(chunk.fold_keys, FOLDS)
        out = np.zeros(chunk.mask.shape)
        for fold, model in enumerate(self.models):
            rows = np.flatnonzero(folds == fold)
            if rows.size:
                log, inverse = encode(self.featurizer, chunk, rows)
                unique = np.arange(log.action_index.shape[0])
                out[rows] = predict_q_hat(self.featurizer, model, log, unique)[inverse]
        return out

    def describe(self) -> dict[str, Any]:
        kind = self.models[0].kind if self.models else "constant"
        return {"kind": kind, "folds": FOLDS if self.models else 0,
                "train_rows": self.train_rows, "feature_bits": self.featurizer.n_bits,
                "converged": all(m.converged for m in self.models)}


class _ActionTables:
    """Per chunk: the table of distinct actions and each decision's rows in it."""

    def __init__(self, featurizer: HashingFeaturizer) -> None:
        self.featurizer = featurizer
        self.keys: dict[tuple[str, str], int] = {}
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.rows_of: dict[str, list[int]] = {}

    def index(self, actions: list[dict[str, Any]], signature: str) -> list[int]:
        rows = self.rows_of.get(signature)
        if rows is None:
            rows = [self._row(a) for a in actions]
            self.rows_of[signature] = rows
        return rows

    def _row(self, action: dict[str, Any]) -> int:
        features = action.get("features") or {}
        key = (action["id"], json.dumps(features, sort_keys=True))
        if key not in self.keys:
            self.keys[key] = len(self.entries)
            self.entries.append((action["id"], features))
        return self.keys[key]

    def table(self) -> EncodedActions:
        """The encoded table; an id seen with several feature sets gets one row per set."""
        seen: dict[str, int] = {}
        unique = []
        for action_id, features in self.entries:
            seen[action_id] = seen.get(action_id, 0) + 1
            unique.append((f"{action_id}\x00{seen[action_id]}", features))
        encoded = self.featurizer.encode_actions(unique)
        real = self.featurizer.encode_actions(list(dict.fromkeys(a for a, _ in self.entries)))
        hashes = dict(zip(real.ids, real.id_hashes, strict=True))
        id_hashes = np.array([hashes[a] for a, _ in self.entries], dtype=np.uint64)
        return EncodedActions(encoded.ids, id_hashes, encoded.features)


def encode(featurizer: HashingFeaturizer, chunk: Chunk, rows: np.ndarray
           ) -> tuple[EncodedLog, np.ndarray]:
    """Hashed contexts and offered actions of the chunk's ``rows``, each distinct (context,
    action list) pair encoded once; and, per row, its pair's position in that log."""
    tables = _ActionTables(featurizer)
    pairs: dict[tuple[str, str], int] = {}
    firsts: list[int] = []
    inverse = np.empty(rows.shape[0], dtype=np.int64)
    for i, row in enumerate(rows.tolist()):
        key = (chunk.context_keys[row], chunk.signatures[row])
        position = pairs.setdefault(key, len(pairs))
        if position == len(firsts):
            firsts.append(row)
        inverse[i] = position
    index = np.full((len(firsts), chunk.mask.shape[1]), -1, dtype=np.int64)
    for i, row in enumerate(firsts):
        index[i, : len(chunk.actions[row])] = tables.index(chunk.actions[row],
                                                           chunk.signatures[row])
    contexts = featurizer.encode_contexts([chunk.contexts[row] for row in firsts])
    return EncodedLog(contexts, tables.table(), index), inverse


def fit(session: Session, scope: Scope, n_decisions: int, *, ignore: frozenset[str],
        max_rows: int = MAX_TRAIN_ROWS, config: RewardModelConfig | None = None,
        types: FeatureTypes = NO_TYPES) -> QModel:
    """Stream the scope once and fit the cross-fitted reward models (`types`: the
    experiment's `feature_types`, read as rank's encoder reads them)."""
    featurizer = HashingFeaturizer(n_bits=18, ignore=ignore, types=types)
    rate = min(1.0, max_rows / max(n_decisions, 1))
    designs: list[list[sp.csr_matrix]] = [[] for _ in range(FOLDS)]
    rewards: list[list[np.ndarray]] = [[] for _ in range(FOLDS)]
    for chunk in chunks(session, scope):
        rows = _sample(chunk.event_ids, rate)
        if rows.size == 0:
            continue
        log, inverse = encode(featurizer, chunk, rows)
        action_rows = log.action_index[inverse, chunk.chosen[rows]]
        folds = hash_folds([chunk.fold_keys[r] for r in rows.tolist()], FOLDS)
        for fold in range(FOLDS):
            part = np.flatnonzero(folds == fold)
            designs[fold].append(featurizer.design(log.contexts, log.actions, inverse[part],
                                                   action_rows[part]))
            rewards[fold].append(chunk.rewards[rows[part]])
    y = [np.concatenate(r) if r else np.zeros(0) for r in rewards]
    return _fit_folds(featurizer, designs, y, config)


def _sample(event_ids: list[str], rate: float) -> np.ndarray:
    if rate >= 1.0:
        return np.arange(len(event_ids))
    cut = rate * 2**32
    return np.flatnonzero([zlib.crc32(f"train:{e}".encode()) < cut for e in event_ids])


def _fit_folds(featurizer: HashingFeaturizer, designs: list[list[sp.csr_matrix]],
               y: list[np.ndarray], config: RewardModelConfig | None) -> QModel:
    total = sum(part.shape[0] for part in y)
    mean = float(np.concatenate(y).mean()) if total else 0.0
    if total < MIN_ROWS or any(part.shape[0] == 0 for part in y):
        return QModel(featurizer, (), mean, total)
    stacked = [sp.vstack(d, format="csr") for d in designs]
    models = tuple(fit_reward_model(stacked[1 - fold], y[1 - fold], config)
                   for fold in range(FOLDS))
    return QModel(featurizer, models, mean, total)
