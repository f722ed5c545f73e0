"""Offline evaluation (Personalizer's "evaluations") on Tailor's OPE report machinery.

Over the decisions logged in ``[start, end)`` (the scope of the OPE report with ``since``
and ``until``), one streaming pass evaluates:

- ``Online``: the experiment's current learner setting, replayed (``vw:`` candidate);
- ``Baseline``: the first offered action (``baseline``);
- ``Random``: every offered action equally likely (``uniform``);
- each custom policy: its VW arguments read as a learner setting (``experiments.offline.
  vwargs``), replayed;
- with ``enablePolicyOptimization``, a small grid of other learner settings
  (``OPTIMIZATION_GRID``, source ``OfflineExperimentation``), replayed: Personalizer's
  "optimization discovery" as a fixed search, not an open-ended one.

The estimates are the OPE report's: the same candidates, reward model, estimators and
options, so ``summary`` equals ``GET /v1/experiments/{key}/reports/ope?candidates=...&since=
...&until=...`` (the doubly robust estimate, the report's verdict estimator). Each policy's
paired difference is taken against the Online policy, so the promotion rule reads as in
``experiments.promotion``: a policy is better only when the lower confidence bound of its
difference is above 0. The time series keeps the DR moments of every 5-minute bucket, which
merge into any coarser interval, expanding or rolling, when the evaluation is read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from experiments.config import LearnerSettings
from experiments.final_decisions import count, scope_of
from experiments.models import Experiment
from experiments.offline import vwargs
from experiments.ope import LoggedBatch, UnitCodes
from experiments.ope.moments import Moments
from experiments.ope_report import candidates, qmodel
from experiments.ope_report.evaluation import Evaluation
from experiments.ope_report.options import OpeOptions
from experiments.ope_report.report import logged_batch
from experiments.ope_report.scope import chunks
from experiments.validation import validate_learner_config

BUCKET_SECONDS = 300
ESTIMATOR = "dr"
APPLICABLE = ("Online", "Custom", "OfflineExperimentation")
LEARNING_SETTINGS = ("Custom", "OfflineExperimentation")
OPTIMIZATION_GRID: tuple[tuple[str, dict[str, Any]], ...] = (
    ("epsilon", {"epsilon": 0.05}), ("epsilon", {"epsilon": 0.2}),
    ("squarecb", {"gamma_scale": 10.0}), ("squarecb", {"gamma_scale": 100.0}))


@dataclass(frozen=True)
class Policy:
    """One policy of an evaluation.

    Attributes:
        name: Its name (Personalizer's ``name``).
        source: ``Online``, ``Baseline``, ``Random`` or ``Custom``.
        arguments: The VW arguments as given (custom) or as Tailor runs them.
        candidate: Its OPE report candidate name.
        learner: The learner setting (Online and Custom only).
    """

    name: str
    source: str
    arguments: str
    candidate: str
    learner: Mapping[str, Any] | None = None


def policies(experiment: Experiment, custom: Sequence[Mapping[str, Any]],
             optimize: bool = False) -> list[Policy]:
    """Online, Baseline, Random, the custom policies (already shape-checked) and, when
    ``optimize``, the grid's settings that are not already there.

    Raises:
        ValidationFailed: A custom policy whose arguments cannot be accepted.
    """
    learner = experiment.settings.learner
    found = [Policy("Online", "Online", learner.vw_arguments,
                    vwargs.candidate_name(learner.raw), learner.raw),
             Policy("Baseline", "Baseline", "", "baseline"),
             Policy("Random", "Random", "", "uniform")]
    for index, item in enumerate(custom):
        setting = vwargs.read(item["arguments"], experiment.settings.reward.raw,
                              f"policies[{index}].arguments")
        found.append(Policy(item["name"], "Custom", item["arguments"], setting.candidate,
                            setting.learner))
    return found + (_grid(experiment, {p.candidate for p in found}) if optimize else [])


def _grid(experiment: Experiment, taken: set[str]) -> list[Policy]:
    found = []
    for exploration, params in OPTIMIZATION_GRID:
        learner = validate_learner_config({"exploration": exploration, "params": params},
                                          experiment.settings.reward.raw)
        candidate = vwargs.candidate_name(learner)
        if candidate not in taken:
            taken.add(candidate)
            arguments = LearnerSettings.parse(learner).vw_arguments
            found.append(Policy(grid_name(exploration, params), "OfflineExperimentation",
                                arguments, candidate, learner))
    return found


def grid_name(exploration: str, params: Mapping[str, Any]) -> str:
    """A grid setting's policy name, e.g. ``squarecb gamma_scale 100``."""
    return f"{exploration} " + ", ".join(f"{k} {v:g}" for k, v in params.items())


def options_for(found: Sequence[Policy], start: float, end: float) -> OpeOptions:
    """The OPE report options that evaluate the same candidates on the same window."""
    names = tuple(dict.fromkeys(p.candidate for p in found))
    return OpeOptions(candidates=names, since=start, until=end)


def evaluate(session: Session, experiment: Experiment, found: Sequence[Policy], start: float,
             end: float, *, now: float | None = None) -> dict[str, Any]:
    """Every policy's estimates and bucketed DR moments on the window (read-only).

    Raises:
        Unprocessable: A policy that cannot be evaluated on the logged decisions.
    """
    options = options_for(found, start, end)
    scope = scope_of(session, experiment, now=now, since=start, until=end)
    sources = {name: candidates.resolve(session, experiment, name)
               for name in options.candidates}
    online = found[0].candidate
    n = count(session, scope)
    unit_field = experiment.settings.unit_field
    model = qmodel.fit(session, scope, n,
                       ignore=frozenset({unit_field}) if unit_field else frozenset(),
                       types=experiment.settings.types)
    states = {name: Evaluation(name, options, paired=name != online) for name in sources}
    buckets: dict[str, dict[int, Any]] = {name: {} for name in sources}
    units = UnitCodes()  # intervals cluster-robust by unit, as in the OPE report
    try:
        for chunk in chunks(session, scope):
            codes = units.named(chunk.unit_ids or [None] * chunk.n)
            base = logged_batch(chunk, sources[online], model.q_hat(chunk))
            for name, source in sources.items():
                batch = base if name == online else logged_batch(chunk, source, base.q_hat)
                states[name].add(batch, None if name == online else base, chunk, codes, None)
                _bucket(buckets[name], batch, chunk.created_at, options)
    finally:
        for source in sources.values():
            if isinstance(source, candidates.ReplaySource):
                source.close()
    for state in states.values():
        state.finish(states[online], None)
    return {"n_decisions": n, "estimator": ESTIMATOR, "options": options.describe(),
            "bucket_seconds": BUCKET_SECONDS, "online": online,
            "policies": [_entry(p, states[p.candidate], buckets[p.candidate]) for p in found]}


def _bucket(found: dict[int, Any], batch: LoggedBatch, created_at: np.ndarray,
            options: OpeOptions) -> None:
    index = np.floor(created_at / BUCKET_SECONDS).astype(np.int64)
    for bucket in np.unique(index):
        rows = np.flatnonzero(index == bucket)
        estimator = found.get(int(bucket)) or options.estimator(ESTIMATOR)
        found[int(bucket)] = estimator.add(batch.rows(rows))


def _entry(policy: Policy, state: Evaluation, buckets: dict[int, Any]) -> dict[str, Any]:
    return {"name": policy.name, "policySource": policy.source, "arguments": policy.arguments,
            "candidate": policy.candidate, "learner": policy.learner,
            "estimates": state.to_dict(),
            "buckets": [_moments(b * BUCKET_SECONDS, est.moments)
                        for b, est in sorted(buckets.items())]}


def _moments(start: float, m: Moments) -> list[float]:
    return [float(start), float(m.n), *map(float, m.mean), *map(float, m.comoment.ravel())]


def summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Personalizer's ``summary`` (DR estimate and interval) with Tailor's details."""
    dr = entry["estimates"]["estimators"][ESTIMATOR]
    out: dict[str, Any] = {"expectedReward": dr["value"],
                           "confidenceInterval": [dr["ci_low"], dr["ci_high"]],
                           "estimator": ESTIMATOR}
    if "vs_champion" in entry["estimates"]:
        out["vsOnline"] = entry["estimates"]["vs_champion"]
    return out


def timeseries(entry: Mapping[str, Any], start: float, end: float, interval_minutes: int,
               window: str, level: float = 0.95) -> list[dict[str, Any]]:
    """DR estimates per interval of ``[start, end)``: each interval alone (``Rolling``) or
    everything from ``start`` to the interval's end (``Expanding``)."""
    width = interval_minutes * 60.0
    groups: dict[int, Moments] = {}
    for row in entry["buckets"]:  # a bucket belongs to the interval it starts in (or the
        if start - BUCKET_SECONDS < row[0] < end:  # first, when it starts before `start`)
            key = max(0, int((row[0] - start) // width))
            groups[key] = groups.get(key, Moments.empty(2)) + _from_row(row)
    points, running = [], Moments.empty(2)
    for key in sorted(groups):
        running = running + groups[key] if window == "Expanding" else groups[key]
        points.append((start + key * width, _estimate(running, level)))
    return [{"timeStamp": stamp, "expectedReward": value, "confidenceInterval": interval}
            for stamp, (value, interval) in points]


def _from_row(row: Sequence[float]) -> Moments:
    return Moments(int(row[1]), np.array(row[2:4]), np.array(row[4:8]).reshape(2, 2))


def _estimate(m: Moments, level: float) -> tuple[float | None, list[float | None]]:
    estimate = replace(OpeOptions(level=level).estimator(ESTIMATOR), moments=m).get()
    return (_finite(estimate.value),
            [_finite(estimate.interval.lower), _finite(estimate.interval.upper)])


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def optimal(result: Mapping[str, Any]) -> str:
    """The best applicable policy whose DR difference to Online has its lower bound above
    0 (Tailor's promotion rule); Online when none has."""
    best, value = "Online", -math.inf
    for entry in result["policies"]:
        versus = entry["estimates"].get("vs_champion")
        if entry["policySource"] not in LEARNING_SETTINGS or not versus:
            continue
        low = versus.get("ci_low")
        estimate = entry["estimates"]["estimators"][ESTIMATOR]["value"]
        if low is not None and low > 0 and estimate is not None and estimate > value:
            best, value = entry["name"], estimate
    return best
