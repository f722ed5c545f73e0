"""Hashed sparse features of (context, action) pairs for the OPE reward model.

The hashing trick (Weinberger et al. 2009) maps each feature name to one of 2**n_bits
columns with a *stable* hash - never Python's salted ``hash()`` - so features agree across
processes: zlib.crc32 of the UTF-8 name, spread to 64 bits by the MurmurHash3 finaliser;
a feature's column is the top n_bits of that, a cross's column the top n_bits of
(h_context XOR h_action) times the 64-bit golden ratio (Fibonacci hashing).

Context (a JSON-like dict, as in the rank call): strings are categorical (``name=value``,
value 1), numbers numeric (``name``, the number), booleans categorical (``name=true``),
lists of strings one categorical feature per item, and one level of nested dicts a
namespace. Actions: an id plus a features dict of the same kinds. Fields the experiment
declares in ``feature_types`` (``types``) mean what they mean to rank's encoder
(`bandits.features`): ``text`` one categorical feature per word (``name=word``, the same
words), ``vector`` and ``embedding`` one numeric feature per dimension (``name[i]``; an
``embedding`` is the same sentence model's vector of the text).
Each (context, action) row holds the context features, the action id, the action features
and the context x action-id crosses, so a linear model can learn which action suits which
context. Contexts and actions are encoded once; rows are assembled vectorised in numpy.
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.sparse as sp

from bandits.features import (
    EMBEDDING,
    NO_TYPES,
    TEXT,
    FeatureError,
    FeatureTypes,
    Kinds,
    embed_text,
    typed_value_error,
    words,
)

Action = str | tuple[str, Mapping[str, object]]
_SEP = "\x1f"


@dataclass(frozen=True, eq=False)
class HashedRows:
    """Ragged rows of hashed features (CSR layout before bucketing).

    Attributes:
        indptr: ``(m + 1,)`` int64 row offsets.
        hashes: ``(nnz,)`` uint64 mixed 64-bit feature hashes.
        values: ``(nnz,)`` float64 feature values.
    """

    indptr: np.ndarray
    hashes: np.ndarray
    values: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows m."""
        return int(self.indptr.shape[0] - 1)


@dataclass(frozen=True, eq=False)
class EncodedActions:
    """A table of distinct actions.

    Attributes:
        ids: ``(A,)`` action ids, in table order.
        id_hashes: ``(A,)`` uint64 mixed 64-bit hashes of the ids.
        features: ``A`` rows of hashed action features.
    """

    ids: tuple[str, ...]
    id_hashes: np.ndarray
    features: HashedRows

    def index(self, action_lists: Sequence[Sequence[str]], width: int | None = None) -> np.ndarray:
        """``(n, K)`` table rows of each decision's offered action ids, padded with -1.

        Args:
            action_lists: For each decision, its offered action ids in column order.
            width: K (default: the longest list).

        Raises:
            ValueError: On an id missing from the table or a list longer than ``width``.
        """
        position = {a: i for i, a in enumerate(self.ids)}
        k = width if width is not None else max((len(a) for a in action_lists), default=0)
        out = np.full((len(action_lists), k), -1, dtype=np.int64)
        for row, ids in enumerate(action_lists):
            if len(ids) > k:
                raise ValueError(f"decision {row} offers {len(ids)} actions, more than K={k}")
            try:
                out[row, : len(ids)] = [position[a] for a in ids]
            except KeyError as err:
                raise ValueError(
                    f"decision {row} offers unknown action id {err.args[0]!r}"
                ) from None
        return out


@dataclass(frozen=True)
class HashingFeaturizer:
    """Hashing featurizer for (context, action) pairs.

    Attributes:
        n_bits: log2 of the number of feature columns (default 18: 262,144 columns).
        ignore: Top-level context keys to leave out (e.g. the unit id).
        types: The experiment's declared field kinds (``feature_types``).
    """

    n_bits: int = 18
    ignore: frozenset[str] = frozenset()
    types: FeatureTypes = NO_TYPES

    def __post_init__(self) -> None:
        if not 1 <= self.n_bits <= 30:
            raise ValueError(f"n_bits must be in [1, 30], got {self.n_bits}")

    @property
    def n_features(self) -> int:
        """Number of columns, 2**n_bits."""
        return 1 << self.n_bits

    def encode_contexts(self, contexts: Iterable[Mapping[str, object]]) -> HashedRows:
        """Hash each context's features once (a Python loop over decisions).

        Args:
            contexts: JSON-like dicts, one per decision.

        Raises:
            ValueError: On an unsupported value type, a non-finite number or nesting
                deeper than one level, naming the decision and key.
        """
        return _encode((("c", ctx) for ctx in contexts), self.ignore, self.types.context)

    def encode_actions(self, actions: Sequence[Action]) -> EncodedActions:
        """Hash a table of distinct actions, each an id or ``(id, features)``."""
        ids = tuple(a if isinstance(a, str) else a[0] for a in actions)
        if len(set(ids)) != len(ids):
            raise ValueError("action ids in the table must be distinct")
        feats = _encode((("a", {} if isinstance(a, str) else a[1]) for a in actions),
                        frozenset(), self.types.action)
        id_hashes = _fmix64(np.array([_hash("#", "id", i) for i in ids], dtype=np.uint64))
        return EncodedActions(ids, id_hashes, feats)

    def design(
        self,
        contexts: HashedRows,
        actions: EncodedActions,
        rows: np.ndarray,
        action_rows: np.ndarray,
    ) -> sp.csr_matrix:
        """Sparse design of m (context, action) pairs.

        Args:
            contexts: Encoded contexts.
            actions: Encoded action table.
            rows: ``(m,)`` context row of each pair.
            action_rows: ``(m,)`` action-table row of each pair.

        Returns:
            ``(m, 2**n_bits)`` CSR matrix: context features, action id, action features and
            context x action-id crosses (hash collisions may leave duplicate column
            entries, which sparse products sum).
        """
        rows, action_rows = np.asarray(rows, np.int64), np.asarray(action_rows, np.int64)
        c_start, c_len = _starts_lengths(contexts.indptr, rows)
        a_start, a_len = _starts_lengths(actions.features.indptr, action_rows)
        row_len = 2 * c_len + 1 + a_len
        index_type = np.int32 if row_len.sum() < 2**31 else np.int64
        indptr = np.zeros(rows.shape[0] + 1, dtype=index_type)
        np.cumsum(row_len, out=indptr[1:])
        cols = np.empty(indptr[-1], dtype=index_type)
        data = np.empty(indptr[-1], dtype=np.float64)
        ctx_src = _ragged(c_start, c_len)
        ctx_h, ctx_v = contexts.hashes[ctx_src], contexts.values[ctx_src]
        id_h = actions.id_hashes[action_rows]
        act_src = _ragged(a_start, a_len)
        segments = [
            (c_len, ctx_h, ctx_v),
            (np.ones_like(rows), id_h, np.ones(rows.shape[0])),
            (a_len, actions.features.hashes[act_src], actions.features.values[act_src]),
            (c_len, _cross(ctx_h, np.repeat(id_h, c_len)), ctx_v),
        ]
        pos = indptr[:-1].astype(np.int64)
        for lengths, hashes, values in segments:
            dest = _ragged(pos, lengths)
            cols[dest] = hashes >> np.uint64(64 - self.n_bits)
            data[dest] = values
            pos += lengths
        return sp.csr_matrix((data, cols, indptr), shape=(rows.shape[0], self.n_features))


def _hash(namespace: str, name: str, value: str | None) -> int:
    """Stable 32-bit hash (CRC-32) of a feature name."""
    text = f"{namespace}{_SEP}{name}" if value is None else f"{namespace}{_SEP}{name}{_SEP}{value}"
    return zlib.crc32(text.encode("utf-8"))


def _encode(
    items: Iterable[tuple[str, Mapping[str, object]]], ignore: frozenset[str],
    kinds: Kinds | None = None,
) -> HashedRows:
    encoder = _Encoder(ignore, kinds or {})
    lengths = [encoder.add_row(obj, namespace, row) for row, (namespace, obj) in enumerate(items)]
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    hashes = _fmix64(np.array(encoder.hashes, dtype=np.uint64))
    return HashedRows(indptr, hashes, np.array(encoder.values, dtype=np.float64))


class _Encoder:
    """Flattens feature dicts into hash and value lists; the Python hot loop of encoding.

    Strings and plain numbers take a fast path; hashes are memoised per (namespace, name,
    value) in a cache that is dropped when it outgrows ``CACHE_LIMIT`` entries.
    """

    CACHE_LIMIT = 1 << 20

    def __init__(self, ignore: frozenset[str], kinds: Kinds) -> None:
        self.ignore = ignore
        self.kinds = kinds  # declared kinds by (namespace key or None, key)
        self.cache: dict[tuple[str, str, str | None], int] = {}
        self.hashes: list[int] = []
        self.values: list[float] = []

    def add_row(self, obj: object, namespace: str, row: int) -> int:
        if not isinstance(obj, Mapping):
            raise ValueError(f"row {row}: expected a dict of features, got {type(obj).__name__}")
        before = len(self.hashes)
        if len(self.cache) > self.CACHE_LIMIT:
            self.cache.clear()
        self._add_dict(obj, namespace, True, row)
        return len(self.hashes) - before

    def _add_dict(self, obj: Mapping[str, object], namespace: str, top: bool, row: int,
                  group: str | None = None) -> None:
        for name, value in obj.items():
            if top and name in self.ignore:
                continue
            if self.kinds and (declared := self.kinds.get((group, name))) is not None:
                self._add_typed(namespace, name, value, declared, row)
                continue
            kind = type(value)
            if kind is str:
                self._put(namespace, name, cast(str, value), 1.0)
            elif kind is float or kind is int:
                self._put_number(namespace, name, value, row)  # type: ignore[arg-type]
            else:
                self._add_other(namespace, name, value, top, row)

    def _add_other(self, namespace: str, name: str, value: object, top: bool, row: int) -> None:
        if value is None:
            return
        if isinstance(value, bool | np.bool_):
            self._put(namespace, name, "true" if value else "false", 1.0)
        elif isinstance(value, numbers.Real):
            self._put_number(namespace, name, value, row)
        elif isinstance(value, Mapping):
            if not top:
                raise ValueError(f"row {row}: key {name!r} nests dicts deeper than one level")
            self._add_dict(value, f"{namespace}.{name}", False, row, name)
        elif isinstance(value, list | tuple) and all(type(v) is str for v in value):
            for item in value:
                self._put(namespace, name, item, 1.0)
        else:
            raise ValueError(f"row {row}: key {name!r} has unsupported value {value!r}")

    def _add_typed(self, namespace: str, name: str, value: object, kind: str,
                   row: int) -> None:
        """A declared field, as rank's encoder reads it (words, or dimensions)."""
        if value is None:
            return
        problem = typed_value_error(value, kind)
        if problem is not None:
            raise ValueError(f"row {row}: key {name!r}: {problem(name)[1]}")
        if kind == TEXT:
            for word in words(cast(str, value)):
                self._put(namespace, name, word, 1.0)
            return
        if kind == EMBEDDING:
            text = cast(str, value)
            if not text.strip():
                return
            try:
                value = embed_text(text, name)
            except FeatureError as exc:
                raise ValueError(f"row {row}: key {name!r}: {exc.reason}") from None
        for dim, x in enumerate(cast(Sequence[float], value)):
            if x:
                self._put(namespace, f"{name}[{dim}]", None, float(x))

    def _put_number(self, namespace: str, name: str, value: numbers.Real, row: int) -> None:
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"row {row}: key {name!r} has a non-finite number {x}")
        self._put(namespace, name, None, x)

    def _put(self, namespace: str, name: str, value: str | None, x: float) -> None:
        key = (namespace, name, value)
        h = self.cache.get(key)
        if h is None:
            h = self.cache[key] = _hash(namespace, str(name), value)
        self.hashes.append(h)
        self.values.append(x)


def _starts_lengths(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return indptr[rows], indptr[rows + 1] - indptr[rows]


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions ``starts[i] + j`` for ``j < lengths[i]``, row after row."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mixed hash of the cross feature of two mixed hashes (Fibonacci hashing of a ^ b)."""
    return (a ^ b) * np.uint64(0x9E3779B97F4A7C15)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (avalanche), vectorised; wraps modulo 2**64."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))
