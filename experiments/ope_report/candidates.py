"""Candidate policies of an OPE report: parsing their names, and their pmf on each chunk.

Names (the ``candidates`` query parameter, comma-separated):

- ``model:<version>`` - a stored model snapshot; ``model:latest`` - the snapshot the
  bandit arm serves now (reported under its version, e.g. ``model:17``);
- ``uniform`` - every offered action equally likely;
- ``baseline`` - always the first offered action (Personalizer's baseline policy);
- ``fixed:<action_id>`` - always that action; where it was not offered, uniform over the
  offered actions (what a fixed champion serves then);
- ``pmf:<name>`` - probabilities supplied per logged decision (``tailor candidates add``);
- ``vw:<exploration>[,<param>=<value>...]`` - another VW learner setting, replayed over the
  log (:mod:`experiments.ope_report.replay`). Its commas are part of the candidate: a
  comma-separated item that is not a candidate name continues the ``vw:`` before it.

Each source gives an ``(n, K)`` pmf over the offered actions of a :class:`Chunk`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session

from bandits.features import NO_TYPES, FeatureTypes
from bandits.policy import VWPolicy
from experiments.errors import NotFound, Unprocessable, ValidationFailed
from experiments.learning import snapshots
from experiments.models import Experiment
from experiments.ope_report import supplied
from experiments.ope_report.replay import ReplaySource, parse_vw_spec
from experiments.ope_report.scope import Chunk

PREFIXES = ("model:", "fixed:", "pmf:", "vw:")
MAX_CANDIDATES = 12


def split_names(values: Iterable[str]) -> list[str]:
    """Candidate names from comma-separated strings, keeping ``vw:`` parameters together.

    Examples:
        >>> split_names(["uniform,vw:squarecb,gamma_scale=20,fixed:a"])
        ['uniform', 'vw:squarecb,gamma_scale=20', 'fixed:a']
    """
    names: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if item in ("uniform", "baseline") or item.startswith(PREFIXES) or not names \
                    or not names[-1].startswith("vw:"):
                names.append(item)
            else:
                names[-1] = f"{names[-1]},{item}"
    return names


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed.field("candidates", message)


class Source(Protocol):
    """A candidate policy evaluated on chunks of the log (in time order)."""

    name: str

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        """``(n, K)`` probabilities over each decision's offered actions (0 in padding)."""
        ...


@dataclass
class UniformSource:
    name: str = "uniform"

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        return chunk.mask / chunk.mask.sum(axis=1, keepdims=True)


@dataclass
class BaselineSource:
    """The first offered action of each decision (Personalizer's baseline)."""

    name: str = "baseline"

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        out = np.zeros_like(chunk.mask, dtype=float)
        out[:, 0] = 1.0
        return out


@dataclass
class FixedSource:
    action_id: str
    name: str = ""
    # Whether any decision it was asked about offered the action: a mistyped id is
    # offered nowhere, and the candidate is then the uniform policy (see ``warnings``).
    seen: bool = False
    offered: bool = False

    def __post_init__(self) -> None:
        self.name = f"fixed:{self.action_id}"

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        out = UniformSource().pmfs(chunk)
        column = np.array([p.get(self.action_id, -1) for p in chunk.positions], dtype=np.intp)
        rows = np.flatnonzero(column >= 0)
        out[rows] = 0.0
        out[rows, column[rows]] = 1.0
        self.seen = self.seen or chunk.n > 0
        self.offered = self.offered or rows.size > 0
        return out

    def warnings(self) -> list[dict[str, str]]:
        """``fixed_not_offered`` when no decision offered the action (a typo, most likely)."""
        if not self.seen or self.offered:
            return []
        return [{"code": "fixed_not_offered", "message": (
            f"{self.name}: no decision offered action {self.action_id!r}, so this candidate "
            "is the uniform policy here; check the action id")}]


@dataclass
class ModelSource:
    """A frozen snapshot: its exploration pmf for each logged context and action set."""

    policy: VWPolicy
    name: str = ""
    types: FeatureTypes = NO_TYPES  # the experiment's feature_types, as rank encoded

    def __post_init__(self) -> None:
        self.name = f"model:{self.policy.version}"

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        out = np.zeros(chunk.mask.shape)
        for i, (context, actions) in enumerate(zip(chunk.contexts, chunk.actions, strict=True)):
            pairs = [(a["id"], a.get("features") or {}) for a in actions]
            out[i, : len(actions)] = self.policy.pmf(context, pairs, self.types)
        return out


@dataclass
class SuppliedSource:
    """``pmf:<name>``: the probabilities stored for each logged decision."""

    candidate_id: int
    name: str

    def pmfs(self, chunk: Chunk) -> np.ndarray:
        out = np.zeros(chunk.mask.shape)
        for i, (pmf, positions) in enumerate(zip(chunk.candidate_pmfs[self.candidate_id],
                                                 chunk.positions, strict=True)):
            if pmf is None:
                raise Unprocessable(f"{self.name} has no pmf for decision "
                                    f"{chunk.event_ids[i]!r}")
            for action, p in pmf.items():
                j = positions.get(action)
                if j is None:
                    raise Unprocessable(f"{self.name} gives probability to {action!r}, not "
                                        f"offered in decision {chunk.event_ids[i]!r}")
                out[i, j] = p
        return out


def resolve(session: Session, experiment: Experiment, name: str) -> Source:
    """The source behind a candidate name.

    Raises:
        ValidationFailed: An unknown kind of name or bad ``vw:`` settings.
        NotFound: A model version or supplied candidate that does not exist.
    """
    if name == "uniform":
        return UniformSource()
    if name == "baseline":
        return BaselineSource()
    kind, _, arg = name.partition(":")
    if not arg:
        raise _bad(f"{name!r} is not a candidate: use model:<version>, model:latest, "
                   "uniform, fixed:<action_id>, pmf:<name> or vw:<exploration>,...")
    if kind == "fixed":
        return FixedSource(arg)
    if kind == "model":
        return ModelSource(_model_policy(session, experiment, arg), types=_types(experiment))
    if kind == "pmf":
        return SuppliedSource(supplied.find(session, experiment, arg).id, name)
    if kind == "vw":
        return ReplaySource(name, parse_vw_spec(arg, experiment.settings.reward.raw),
                            types=_types(experiment))
    raise _bad(f"unknown candidate kind {kind!r} in {name!r}")


def _types(experiment: Experiment) -> FeatureTypes:
    """The declared field kinds (fixed at registration, so those every decision used)."""
    return experiment.settings.types


def _model_policy(session: Session, experiment: Experiment, ref: str) -> VWPolicy:
    if ref != "latest" and not ref.isdigit():
        raise _bad(f"model:{ref} - a model is model:<version> or model:latest")
    try:
        model = snapshots.find(session, experiment, ref)
    except NotFound as exc:
        raise NotFound(f"model:{ref}: {exc.message}") from None
    return VWPolicy(model.arguments, model.data, version=model.version)


def resolve_all(session: Session, experiment: Experiment, names: list[str]) -> list[Source]:
    """Sources for the names, without duplicates (after ``model:latest`` is resolved)."""
    if len(names) > MAX_CANDIDATES:
        raise _bad(f"at most {MAX_CANDIDATES} candidates per report")
    sources: dict[str, Source] = {}
    for name in names:
        source = resolve(session, experiment, name)
        sources.setdefault(source.name, source)
    return list(sources.values())
