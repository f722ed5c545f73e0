"""Policies: a context and the offered actions → a probability for each action.

A policy returns a pmf over exactly the offered actions, in the order offered. The caller
samples one action with ``sample_index(pmf, uniform_for(event_id))``, so the choice for an
event id is reproducible and the logged propensity is ``pmf[index]``.

``VWPolicy`` wraps one ``vowpalwabbit.Workspace``. VW is not thread-safe, so every call
goes through a lock; create policies after the worker process has forked.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pylibvw
import vowpalwabbit

from bandits.explain import Explainer, top, unexplainable
from bandits.features import NO_TYPES, ActionLines, FeatureTypes, build_example

Actions = Sequence[tuple[str, Mapping[str, Any]]]

PMF_TOLERANCE = 1e-3  # VW pmfs are float32; beyond this drift it is not a pmf


class PolicyError(RuntimeError):
    """A policy produced something that is not a probability distribution."""


class Policy(Protocol):
    """Anything that maps a context and offered actions to a pmf."""

    name: str

    def pmf(self, context: Mapping[str, Any], actions: Actions,
            types: FeatureTypes = NO_TYPES, shared: str | None = None) -> list[float]:
        """Probabilities for ``actions`` (same length and order, summing to 1).
        ``shared``: ``context``'s shared line (features.shared_line), when the caller
        already encoded it (a rank validates its context by encoding it)."""
        ...


def _require_actions(actions: Actions) -> int:
    if not actions:
        raise ValueError("at least one action is required")
    return len(actions)


class UniformPolicy:
    """Every offered action with equal probability."""

    name = "uniform"

    def pmf(self, context: Mapping[str, Any], actions: Actions,
            types: FeatureTypes = NO_TYPES, shared: str | None = None) -> list[float]:
        """Return ``1/n`` for each of the ``n`` offered actions."""
        count = _require_actions(actions)
        return [1.0 / count] * count


class FixedPolicy:
    """Always the same action.

    Probability 1 on the first offered action whose id is ``action_id``. When that action
    is not offered (excluded, or absent from the candidates of a rank call) the policy
    falls back to uniform over the offered actions, so it still answers.
    """

    def __init__(self, action_id: str) -> None:
        self.action_id = action_id
        self.name = f"fixed:{action_id}"

    def pmf(self, context: Mapping[str, Any], actions: Actions,
            types: FeatureTypes = NO_TYPES, shared: str | None = None) -> list[float]:
        """One-hot on ``action_id`` if offered, otherwise uniform."""
        count = _require_actions(actions)
        for index, (action_id, _features) in enumerate(actions):
            if action_id == self.action_id:
                return [1.0 if i == index else 0.0 for i in range(count)]
        return [1.0 / count] * count


class BaselinePolicy:
    """The first offered action (Personalizer's baseline: the first non-excluded action,
    or a multi-slot slot's `baselineAction`, which the adapter offers first)."""

    name = "baseline"

    def pmf(self, context: Mapping[str, Any], actions: Actions,
            types: FeatureTypes = NO_TYPES, shared: str | None = None) -> list[float]:
        """One-hot on the first offered action."""
        count = _require_actions(actions)
        return [1.0] + [0.0] * (count - 1)


def checked_pmf(values: Sequence[float], count: int) -> list[float]:
    """Validate a pmf from VW and renormalize float drift.

    Raises:
        PolicyError: wrong length, non-finite or negative entries, or a sum off by more
            than ``PMF_TOLERANCE``.
    """
    pmf = [float(v) for v in values]
    if len(pmf) != count:
        raise PolicyError(f"expected {count} probabilities, got {len(pmf)}")
    if not all(math.isfinite(p) and p >= -1e-9 for p in pmf):
        raise PolicyError(f"not a pmf: {pmf}")
    pmf = [max(p, 0.0) for p in pmf]
    total = math.fsum(pmf)
    if abs(total - 1.0) > PMF_TOLERANCE:
        raise PolicyError(f"not a pmf (sums to {total}): {pmf}")
    return [p / total for p in pmf]


def workspace(arguments: str, model_bytes: bytes | None = None) -> vowpalwabbit.Workspace:
    """A VW workspace for ``arguments``, loaded from ``model_bytes`` when given.

    VW reads models only from files: the bytes go to a temporary file that is removed
    once loaded. The arguments stored in the model are merged with ``arguments``.
    """
    if model_bytes is None:
        return vowpalwabbit.Workspace(arguments)
    with tempfile.TemporaryDirectory(prefix="tailor-vw-") as directory:
        path = os.path.join(directory, "model.vw")
        with open(path, "wb") as handle:
            handle.write(model_bytes)
        return vowpalwabbit.Workspace(f"{arguments} -i {path}")


class VWPolicy:
    """A VW ``--cb_explore_adf`` model as a policy (thread-safe through a lock)."""

    def __init__(self, arguments: str, model_bytes: bytes | None = None, version: int = 0):
        """Create the workspace.

        Args:
            arguments: VW arguments, e.g. from ``exploration.vw_arguments``.
            model_bytes: a saved model (``OnlineLearner.to_bytes``); None for a fresh one.
            version: the model version this policy serves (reported with decisions).
        """
        self.arguments = arguments
        self.version = version
        self.name = f"model:{version}"
        self._lock = threading.Lock()
        self._workspace = workspace(arguments, model_bytes)
        self._action_lines = ActionLines()
        self._explainer: Explainer | None = None

    def pmf(self, context: Mapping[str, Any], actions: Actions,
            types: FeatureTypes = NO_TYPES, shared: str | None = None) -> list[float]:
        """The model's exploration pmf over ``actions``, in the order given (``types``:
        the experiment's declared field kinds).

        Raises:
            FeatureError: for a context or action that cannot be encoded.
            PolicyError: if VW returns something that is not a pmf.
        """
        count = _require_actions(actions)
        lines = build_example(context, actions, lines=self._action_lines, types=types,
                              shared=shared)
        return checked_pmf(self.predict_lines(lines), count)

    def predict_lines(self, lines: list[str]) -> list[float]:
        """VW's action probabilities for an encoded example (`build_example`'s lines).

        Calls pylibvw, VW's own binding, directly: `Workspace.predict` on strings does the
        same three steps (parse, predict_multi, finish) but wraps every line in a Python
        `Example` and checks its arguments, which was half of its cost. The text is
        prepared as `Workspace.parse` prepares it."""
        text = "\n".join(lines).replace("\r", "").strip()
        with self._lock:
            workspace = self._workspace
            examples = pylibvw.vw._parse(workspace, text)
            try:
                pylibvw.vw.predict_multi(workspace, examples)
                return list(examples[0].get_action_scores())
            finally:
                pylibvw.vw._finish_example_multi_ex(workspace, examples)

    def explain(self, context: Mapping[str, Any], actions: Actions, index: int,
                types: FeatureTypes = NO_TYPES, shared: str | None = None) -> dict[str, Any]:
        """The top contributions to action ``index``'s score in this model
        (``bandits.explain``): ``{"action_id", "features": [{"name", "weight", ...}]}``,
        with ``"unavailable"`` instead when these arguments cannot be explained."""
        action_id = actions[index][0]
        reason = unexplainable(self.arguments)
        if reason is not None:
            return {"action_id": action_id, "features": [], "unavailable": reason}
        lines = build_example(context, actions, lines=self._action_lines, types=types,
                              shared=shared)
        with self._lock:
            if self._explainer is None:
                self._explainer = Explainer(self._workspace, self.arguments)
            contributions = self._explainer.contributions(lines[0], lines[index + 1])
        return {"action_id": action_id, "features": top(contributions)}

    def close(self) -> None:
        """Release the workspace."""
        with self._lock:
            self._workspace.finish()


def sample_index(pmf: Sequence[float], draw: float | np.random.Generator) -> int:
    """The index whose cumulative-probability interval holds ``draw``.

    ``draw`` is a uniform number in [0, 1) (``uniform_for``) or a generator to take one
    from. Entries are normalized by their sum, so float drift cannot push the draw out of
    range; an index with probability 0 is never returned. Plain Python: for the few
    actions of a rank it is several times faster than going through NumPy.

    Raises:
        ValueError: empty pmf, negative or non-finite entries, or a zero sum.
    """
    weights = list(pmf)
    if not weights or any(not isinstance(w, int | float) for w in weights):
        raise ValueError("pmf must be a non-empty sequence of numbers")
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ValueError("pmf entries must be finite and non-negative")
    total = math.fsum(weights)
    if total <= 0:
        raise ValueError("pmf must have positive mass")
    u = draw.random() if isinstance(draw, np.random.Generator) else float(draw)
    if not 0.0 <= u < 1.0:
        raise ValueError("draw must be in [0, 1)")
    target = u * total
    cumulative = 0.0
    last = 0
    for index, weight in enumerate(weights):
        if weight > 0:
            cumulative += weight
            last = index
            if target < cumulative:
                return index
    return last  # rounding at the top end: the last action with positive mass


def uniform_for(event_id: str, salt: str = "") -> float:
    """A number in [0, 1) from SHA-256 of ``salt`` and ``event_id``: the same for the same
    event in every process and run (53 bits, a double's full precision)."""
    return (int.from_bytes(_digest(event_id, salt)[:8], "big") >> 11) / (1 << 53)


def _digest(event_id: str, salt: str) -> bytes:
    salt_bytes = salt.encode("utf-8", "surrogatepass")
    return hashlib.sha256(
        len(salt_bytes).to_bytes(8, "big") + salt_bytes + event_id.encode("utf-8", "surrogatepass")
    ).digest()


def rng_for(event_id: str, salt: str = "") -> np.random.Generator:
    """A generator seeded from SHA-256 of ``salt`` and ``event_id`` (stable across runs
    and processes, unlike Python's ``hash``)."""
    return np.random.default_rng(int.from_bytes(_digest(event_id, salt), "big"))
