"""Context features as the drift report sees them: the fields VW encodes, by name.

As :mod:`bandits.features` encodes a context: a top-level scalar is the feature ``key``,
a key of a top-level object (a namespace) is ``namespace.key``. Strings are categories,
booleans the categories ``true``/``false`` (the features VW gets), numbers numeric.
Lists (one VW feature per item, not one value per decision) and deeper nesting have no
single value per decision and are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.drift import psi as psi_
from experiments.drift.psi import Value

MAX_FEATURES = 100


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's PSI between the windows.

    Attributes:
        feature: ``key`` or ``namespace.key``.
        kind: ``numeric`` or ``categorical``.
        psi: The population stability index.
        bins: The bins with each window's share.
    """

    feature: str
    kind: str
    psi: float
    bins: list[psi_.Bin]


def flatten(context: Any) -> dict[str, Value]:
    """A context's scalar features by name (``key``, ``namespace.key``).

    Examples:
        >>> flatten({"hour": 14, "mobile": True, "user": {"segment": "new"}, "tags": ["a"]})
        {'hour': 14.0, 'mobile': 'true', 'user.segment': 'new'}
    """
    found: dict[str, Value] = {}
    if not isinstance(context, Mapping):
        return found
    for key, value in context.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                _put(found, f"{key}.{sub}", inner)
        else:
            _put(found, str(key), value)
    return found


def _put(found: dict[str, Value], name: str, value: Any) -> None:
    if isinstance(value, bool):
        found[name] = "true" if value else "false"
    elif isinstance(value, int | float):
        found[name] = float(value)
    elif isinstance(value, str):
        found[name] = value


def feature_names(reference: Sequence[dict[str, Value]], recent: Sequence[dict[str, Value]],
                  limit: int = MAX_FEATURES) -> tuple[list[str], bool]:
    """The ``limit`` features present in most sampled decisions of both windows (ties by
    name), sorted by name, and whether some were left out."""
    seen = Counter(name for row in (*reference, *recent) for name in row)
    ranked = sorted(seen, key=lambda n: (-seen[n], n))
    return sorted(ranked[:limit]), len(ranked) > limit


def feature_drift(name: str, reference: Sequence[dict[str, Value]],
                  recent: Sequence[dict[str, Value]]) -> FeatureDrift:
    """PSI of feature ``name``: numeric when every value present in either window is a
    number, else categorical by value (numbers spelled as text)."""
    ref = [row.get(name) for row in reference]
    rec = [row.get(name) for row in recent]
    numeric = all(isinstance(v, float) for v in _present(ref, rec))
    if numeric:
        bins = psi_.numeric_bins(ref, rec)
    else:
        bins = psi_.categorical_bins([_text(v) for v in ref], [_text(v) for v in rec])
    return FeatureDrift(name, "numeric" if numeric else "categorical",
                        psi_.psi([b.reference for b in bins], [b.recent for b in bins]), bins)


def _present(*columns: Iterable[Value]) -> Iterable[Value]:
    return (v for column in columns for v in column if v is not None)


def _text(value: Value) -> str | None:
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) or abs(value) >= 1e16 else str(int(value))
    return value
