"""The OPE report: candidates versus the champion on the logged decisions.

Two streaming passes over the scope's decisions (:mod:`experiments.ope_report.scope`):
the first fits the cross-fitted reward model of DM/DR
(:mod:`experiments.ope_report.qmodel`), the second evaluates the champion and every
candidate with IPS, SNIPS, DM, DR, Switch-DR and DR-os, their weight diagnostics, the
paired difference of each candidate against the champion per estimator, and the bandit
health checks. Memory holds one chunk, the training sample of the reward model and
constant-size summaries, whatever the log's size.

The verdict uses the paired DR difference by default (``estimator=`` picks another): a
candidate is ``better`` only when the lower bound of its difference is above 0. Every
computed report is stored (``ope_reports``), so a promotion can cite it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bandits.features import FeatureError
from bandits.policy import PolicyError
from experiments import clock, value_bounds
from experiments.abstats import MeanStats, is_zero_one, summarize
from experiments.errors import NotFound, Unprocessable, ValidationFailed
from experiments.final_decisions import Scope, count, scope_of
from experiments.learning import snapshots
from experiments.models import Decision, Experiment, OpeReport
from experiments.ope import LoggedBatch, UnitCodes
from experiments.ope_report import candidates, crosscheck, health, qmodel
from experiments.ope_report.evaluation import Evaluation
from experiments.ope_report.options import OpeOptions
from experiments.ope_report.scope import Chunk, chunks
from experiments.ope_report.scope import missing_candidate_pmfs as missing

Progress = Callable[[str, int, int], None]
NOTES = [
    "Decisions: activated, not logged while paused, reward window closed; reward = the "
    "in-window aggregate or the experiment's default.",
    "champion.on_policy: mean reward of the champion arm's own decisions (t or Wilson "
    "interval; with returning units a ratio of per-unit sums and its delta-method t "
    "interval); champion.estimators: the champion's value estimated on all decisions.",
    "vs_champion: paired difference candidate - champion on the same decisions "
    "(delta method), verdict 'better' only when its lower bound is above 0.",
    "DM/DR: reward model cross-fitted on 2 hash folds of the units (a decision without a "
    "unit: of its event id).",
    "Intervals treat the unit (customer) as the independent observation: variances are "
    "cluster-robust by unit and the bootstrap resamples units; a decision without a unit is "
    "a unit of its own.",
]


def default_candidates(session: Session, experiment: Experiment) -> tuple[str, ...]:
    """``model:latest`` when the bandit has a snapshot, and ``uniform``."""
    has_model = snapshots.serving(session, experiment) is not None
    return ("model:latest", "uniform") if has_model else ("uniform",)


def build_report(session: Session, experiment: Experiment, options: OpeOptions, *,
                 progress: Progress | None = None, now: float | None = None,
                 store: bool = True) -> dict[str, Any]:
    """Compute the OPE report (and store it, committing, unless ``store`` is False).

    Raises:
        ValidationFailed: Bad candidate names or settings.
        NotFound: A model version or supplied candidate that does not exist.
        Unprocessable: A supplied candidate without a pmf for some decisions (named), or a
            champion model that no longer exists.
    """
    scope = scope_of(session, experiment, now=now, since=options.since, until=options.until)
    names = list(options.candidates or default_candidates(session, experiment))
    sources = candidates.resolve_all(session, experiment, names)
    champion = _champion(session, experiment)
    _require_supplied(session, scope, [champion, *sources])
    n = count(session, scope)
    tick = progress or (lambda stage, done, total: None)
    model = qmodel.fit(session, scope, n, ignore=_ignored(experiment),
                       types=experiment.settings.types)
    tick("reward model", n, n)
    check = crosscheck.start(session, experiment, scope, options)
    live = check if isinstance(check, crosscheck.CrossCheck) else None
    evaluations, tally = _evaluate(session, scope, champion, sources, options, n, model, tick,
                                   live)
    report = _document(session, experiment, scope, options, n, champion.name, evaluations,
                       model, tally)
    report["ab_vs_ope"] = live.to_dict(session, scope) if live else check
    if report["ab_vs_ope"]["disagree"]:
        report["warnings"].append(crosscheck.warning(report["ab_vs_ope"]))
    report["warnings"].extend(warning for source in sources
                              if isinstance(source, candidates.FixedSource)
                              for warning in source.warnings())
    for source in sources:
        if isinstance(source, candidates.ReplaySource):
            source.close()
    return save(session, experiment, report) if store else report


def _champion(session: Session, experiment: Experiment) -> candidates.Source:
    spec = experiment.settings.champion
    try:
        return candidates.resolve(session, experiment, spec)
    except (NotFound, ValidationFailed) as exc:  # e.g. a champion model that was pruned
        raise Unprocessable(f"the champion {spec} cannot be evaluated: {exc.message}") from None


def _ignored(experiment: Experiment) -> frozenset[str]:
    unit_field = experiment.settings.unit_field
    return frozenset({unit_field}) if unit_field else frozenset()


def _require_supplied(session: Session, scope: Scope, sources: list[candidates.Source]) -> None:
    for source in sources:
        if isinstance(source, candidates.SuppliedSource):
            total, first = missing(session, scope, source.candidate_id)
            if total:
                raise Unprocessable(
                    f"{source.name} has no pmf for {total} of the logged decisions, e.g. "
                    f"{', '.join(first)}; add them (tailor candidates add --replace)",
                    [{"candidate": source.name, "missing": total, "event_ids": first}])


def _evaluate(session: Session, scope: Scope, champion: candidates.Source,
              sources: list[candidates.Source], options: OpeOptions, n: int,
              model: qmodel.QModel, tick: Progress, check: crosscheck.CrossCheck | None,
              ) -> tuple[dict[str, Evaluation], health.HealthTally]:
    rng = np.random.default_rng(options.seed) if options.intervals == "bootstrap" else None
    evaluations = {"": Evaluation(champion.name, options, paired=False)}
    evaluations.update({s.name: Evaluation(s.name, options) for s in sources})
    tally, done, units = health.HealthTally(), 0, UnitCodes()
    for chunk in chunks(session, scope, _supplied_ids([champion, *sources])):
        codes = units.named(chunk.unit_ids or [None] * chunk.n)
        base = logged_batch(chunk, champion, model.q_hat(chunk))
        evaluations[""].add(base, None, chunk, codes, rng)
        for source in sources:
            batch = logged_batch(chunk, source, base.q_hat)
            evaluations[source.name].add(batch, base, chunk, codes, rng)
        if check is not None:
            check.add(chunk, base.q_hat)
        tally.add(chunk)
        done += chunk.n
        tick("estimators", done, n)
    for evaluation in evaluations.values():
        evaluation.finish(evaluations[""], rng)
    return evaluations, tally


def _supplied_ids(sources: list[candidates.Source]) -> list[int]:
    return sorted({s.candidate_id for s in sources if isinstance(s, candidates.SuppliedSource)})


def logged_batch(chunk: Chunk, source: candidates.Source,
                 q_hat: np.ndarray | None) -> LoggedBatch:
    """The chunk with a policy's pmf; data the estimators refuse becomes a 422."""
    try:
        return LoggedBatch(rewards=chunk.rewards, logged_propensity=chunk.propensity,
                           chosen=chunk.chosen, target_pmf=source.pmfs(chunk), mask=chunk.mask,
                           q_hat=q_hat)
    except (ValueError, PolicyError, FeatureError) as exc:
        raise Unprocessable(f"{source.name} cannot be evaluated on the decisions from "
                            f"{chunk.event_ids[0]!r} on: {exc}") from None


def on_policy(session: Session, scope: Scope, alpha: float) -> dict[str, Any]:
    """Mean reward of the champion arm's own decisions, with its interval: per unit (ratio
    of per-unit sums, delta-method t interval) when units returned, else per decision."""
    units = crosscheck.unit_stats(session, scope, "champion")
    if units.n >= 2 and not units.one_per_unit:
        ci = units.interval(alpha)
        return {"value": units.mean, "ci_low": ci.lower if ci else None,
                "ci_high": ci.upper if ci else None, "n": int(units.decisions),
                "n_units": units.n, "method": "ratio"}
    reward = value_bounds.bounded(scope.reward())
    n, total, total_sq, low, high = session.execute(
        sa.select(sa.func.count(), sa.func.sum(reward), sa.func.sum(reward * reward),
                  sa.func.min(reward), sa.func.max(reward))
        .where(*scope.conditions(), Decision.arm == "champion")).one()
    stats = MeanStats.from_aggregates(int(n or 0), float(total or 0), float(total_sq or 0))
    summary = summarize(stats, alpha=alpha, binary=is_zero_one(stats, low, high))
    ci = summary.ci
    return {"value": summary.mean, "ci_low": ci.lower if ci else None,
            "ci_high": ci.upper if ci else None, "n": stats.n, "n_units": units.n,
            "method": summary.method if stats.n else None}


def _document(session: Session, experiment: Experiment, scope: Scope, options: OpeOptions,
              n: int, champion_name: str, evaluations: dict[str, Evaluation],
              model: qmodel.QModel, tally: health.HealthTally) -> dict[str, Any]:
    champion_eval = evaluations.pop("")
    checks = health.summarize(session, tally, experiment.id)
    warnings = [w for e in [champion_eval, *evaluations.values()] for w in e.warnings()]
    if n == 0:
        warnings.insert(0, {"code": "no_decisions", "message": "no closed decisions to "
                            "evaluate yet: every estimate is null"})
    if tally.bounded:
        warnings.append({"code": value_bounds.WARNING,
                         "message": value_bounds.warning_message("reward")})
    if model.models and not model.describe()["converged"]:
        warnings.append({"code": "reward_model", "message": "the reward model did not "
                         "converge; DM and DR may be off"})
    return {
        "experiment": experiment.key, "n_decisions": n,
        "champion": {"candidate": champion_name,
                     "on_policy": on_policy(session, scope, 1 - options.level),
                     **champion_eval.to_dict()},
        "candidates": {name: e.to_dict() for name, e in evaluations.items()},
        "n_units": champion_eval.n_units,
        "report_id": None, "generated_at": clock.iso(scope.now), **options.describe(),
        "scope": {"now": clock.iso(scope.now), "max_decision_id": scope.max_id},
        "reward_model": model.describe(), "health": checks,
        "warnings": warnings + checks["warnings"], "notes": NOTES,
    }


def save(session: Session, experiment: Experiment, report: dict[str, Any]) -> dict[str, Any]:
    """Store the report (commits) and return it with its ``report_id``."""
    row = OpeReport(experiment_id=experiment.id, report=report, created_at=clock.now())
    session.add(row)
    session.flush()
    row.report = {**report, "report_id": row.id}
    session.commit()
    return row.report


def stored(session: Session, experiment: Experiment, report_id: str) -> dict[str, Any]:
    """A stored report by id, or ``latest``."""
    query = sa.select(OpeReport).where(OpeReport.experiment_id == experiment.id)
    if report_id == "latest":
        query = query.order_by(OpeReport.id.desc())
    elif report_id.isdigit() and len(report_id) < 12:
        query = query.where(OpeReport.id == int(report_id))
    else:
        raise ValidationFailed.field("report_id", "must be a report id or 'latest'")
    row = session.scalars(query.limit(1)).first()
    if row is None:
        raise NotFound("no such OPE report" if report_id != "latest" else
                       "no OPE report yet: GET .../reports/ope computes one")
    return row.report
