"""Why an action scored as it did: per-feature contributions read from VW's weights.

For ``--cb_explore_adf`` VW scores each action on one example: the shared (context)
features, the action's features, VW's constant, and the ``--interactions`` crossings of
namespaces by first letter. A feature's contribution to that score is its weight times
its value. This module lists those features from the VW text we wrote for the example,
computes each one's weight index the way VW does (``hash_space`` / ``hash_feature`` of the
Python API, and for an interaction of features with indices h1, h2, ... the index
``(h1 * FNV_prime) ^ h2`` folded left, masked to the weight table), and reads the weight
with ``Workspace.get_weight``. The names are VW's own audit names (``c_user^segment=pro``,
``c^hour*aid^id=a1``); tests/unit/test_explain.py checks every name, index and weight
against VW's ``--audit`` output for the same model and example.

VW predicts a cost (cost = -reward), so a contribution is reported in reward terms:
``-(weight x value)``: positive pushes the action up.

Not explained (``unexplainable`` says why): ``bag`` and ``cover``, which score with
several models at once; ``cb_type dr`` (its weights are laid out apart: the audit
disagrees); and interaction terms that repeat a namespace letter (``cca``), which VW
expands in its own order without duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass

FNV_PRIME = 16777619
UINT64 = (1 << 64) - 1  # VW's index arithmetic wraps at 64 bits
CONSTANT_INDEX = 11650396  # VW's constant feature ("Constant")
TOP = 10


@dataclass(frozen=True)
class Contribution:
    name: str
    value: float
    vw_weight: float

    @property
    def reward(self) -> float:
        """The contribution to the predicted reward (VW learns costs: −weight × value)."""
        return 0.0 - self.vw_weight * self.value

    def as_dict(self) -> dict[str, float | str]:
        return {"name": self.name, "weight": self.reward, "value": self.value,
                "vw_weight": self.vw_weight}


Feature = tuple[str, str, float]  # (namespace, feature name, value)


def parse_line(line: str) -> list[Feature]:
    """The features of one line of VW text as `bandits.features` writes it (no spaces,
    ``|`` or ``:`` inside names; an optional ``shared`` or label prefix)."""
    features: list[Feature] = []
    for group in line.split("|")[1:]:
        namespace, *items = group.strip().split(" ")
        for item in items:
            if not item:
                continue
            name, _, value = item.partition(":")
            features.append((namespace, name, float(value) if value else 1.0))
    return features


def interactions(arguments: str) -> list[str]:
    """The ``--interactions`` / ``-q`` terms of a VW argument string."""
    words = arguments.split()
    return [words[i + 1] for i, word in enumerate(words[:-1])
            if word in ("--interactions", "-q", "--quadratic")]


def unexplainable(arguments: str) -> str | None:
    """Why a model with these arguments cannot be explained here, or None."""
    words = arguments.split()
    if "--bag" in words or "--cover" in words:
        return "bag and cover score with several models; explanations need one"
    if "dr" in words and words[words.index("dr") - 1] == "--cb_type":
        return "cb_type dr keeps its scoring weights apart; explanations need mtr, ips or dm"
    if any(len(set(term)) != len(term) for term in interactions(arguments)):
        return "interaction terms that repeat a namespace letter are not explained"
    return None


class Explainer:
    """Contributions for examples scored by one VW workspace (call under its lock)."""

    def __init__(self, workspace: object, arguments: str) -> None:
        self._ws = workspace
        self._mask = workspace.num_weights() - 1  # type: ignore[attr-defined]
        self._terms = interactions(arguments)
        self._spaces: dict[str, int] = {}

    def _index(self, namespace: str, name: str) -> int:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = self._ws.hash_space(namespace)  # type: ignore[attr-defined]
        return int(self._ws.hash_feature(name, space))  # type: ignore[attr-defined]

    def contributions(self, shared: str, action: str) -> list[Contribution]:
        """Every feature of the action's example with a non-zero weight or value."""
        features = [(ns, name, value, self._index(ns, name))
                    for ns, name, value in parse_line(shared) + parse_line(action)]
        found = [(f"{ns}^{name}", value, index) for ns, name, value, index in features]
        found.append(("Constant", 1.0, CONSTANT_INDEX))
        for term in self._terms:
            found.extend(self._crossed(term, features))
        weight = self._ws.get_weight  # type: ignore[attr-defined]
        return [Contribution(name, value, float(weight(index & self._mask)))
                for name, value, index in found]

    def _crossed(self, term: str,
                 features: list[tuple[str, str, float, int]]) -> list[tuple[str, float, int]]:
        crossed: list[tuple[str, float, int]] = [("", 1.0, 0)]
        for position, letter in enumerate(term):
            group = [f for f in features if f[0][:1] == letter]
            crossed = [(f"{name}*{ns}^{feat}" if position else f"{ns}^{feat}",
                        value * v, ((index * FNV_PRIME) & UINT64) ^ h if position else h)
                       for name, value, index in crossed for ns, feat, v, h in group]
        return crossed


def top(contributions: list[Contribution], count: int = TOP) -> list[dict[str, float | str]]:
    """The largest contributions by size, non-zero only."""
    ranked = sorted((c for c in contributions if c.reward != 0.0),
                    key=lambda c: abs(c.reward), reverse=True)
    return [c.as_dict() for c in ranked[:count]]
