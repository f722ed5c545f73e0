"""Promoting a candidate to champion on the evidence of an OPE report, and rolling back.

A promotion is refused (409, with the reasons) unless the newest stored OPE report that
evaluated the candidate

- was computed against the current champion (its verdict is relative to it),
- says ``better`` (the lower bound of the paired difference, DR by default, is above 0),
- is fresh: at most ``max_age_seconds`` old (default 24 hours) and the number of decisions
  a report would read now is at most ``1 + max_growth`` (default 10%) times the number
  it read, so the evidence describes the current data.

``force: true`` promotes anyway; the history row and the audit entry record that it was
forced, and the verdict (if any) it overrode. Only frozen policies can be champions:
``model:<version>`` (``model:latest`` resolves to the snapshot the bandit serves),
``fixed:<action_id>`` and ``uniform``. Every promotion and rollback is a new version of
the experiment's configuration (history change ``promote`` / ``rollback``) and an audit
entry, in one transaction.

Rollback restores the champion that the newest promotion not yet rolled back replaced, so
repeated rollbacks walk back through the promotions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from msgspec import Meta
from sqlalchemy.orm import Session

from experiments import audit, clock, registry
from experiments.command_fields import context
from experiments.errors import Conflict, NotFound, ValidationFailed
from experiments.final_decisions import count, scope_of
from experiments.learning import snapshots
from experiments.models import Experiment, ExperimentHistory, OpeReport
from experiments.validation import validate_champion

REPORTS_SEARCHED = 50


@dataclass(frozen=True)
class Rules:
    """When an OPE report is evidence enough.

    Attributes:
        max_age_seconds: Oldest acceptable report.
        max_growth: Largest acceptable relative growth of the decisions since the report.
    """

    max_age_seconds: float = 24 * 3600.0
    max_growth: float = 0.10


@dataclass(frozen=True, kw_only=True)
class Promote:
    """Make a candidate the champion of an experiment (the body of `POST .../promote`)."""

    actor: audit.Actor | audit.KeyPrincipal = context()
    experiment: Experiment = context()
    rules: Rules = context()  # the service's configuration
    candidate: Annotated[str, Meta(
        description="model:<n>, model:latest, fixed:<action_id> or uniform")]
    force: bool = False
    reason: Annotated[str, Meta(max_length=500)] | None = None


def _check(command: Promote) -> None:
    """The body's values, as received, are what `Promote` says (else a 400 naming one)."""
    if not isinstance(command.candidate, str) or not command.candidate:
        raise ValidationFailed.field("candidate", "required: e.g. model:17, fixed:<id>, uniform")
    if not isinstance(command.force, bool):
        raise ValidationFailed.field("force", "must be true or false")
    reason = command.reason
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ValidationFailed.field("reason", "must be a string of at most 500 characters")


def champion_config(session: Session, experiment: Experiment, name: str) -> tuple[str, dict]:
    """``(canonical name, champion config)`` for a promotable candidate.

    Raises:
        ValidationFailed: ``vw:``/``pmf:`` candidates (explaining why), unknown names.
        NotFound: A model version that does not exist.
    """
    kind, _, arg = name.partition(":")
    if name == "uniform":
        return name, {"type": "uniform"}
    if kind == "vw":
        raise ValidationFailed.field("candidate", (
            "a vw: candidate is a learner setting evaluated by replaying the log, not a "
            "frozen policy: make it the bandit's setting (PATCH the experiment's learner), "
            "then promote one of its model snapshots (model:<version>) once a report says "
            "it is better"))
    if kind == "pmf":
        raise ValidationFailed.field("candidate", (
            "a pmf: candidate is a set of probabilities for past decisions only; it cannot "
            "decide new ones: serve it as a model (import it, POST .../models) and promote "
            "that model:<version>"))
    if kind == "fixed" and arg:
        catalog = set(experiment.settings.catalog) or None
        return name, validate_champion({"type": "fixed", "action_id": arg}, catalog)
    if kind == "model" and arg:
        model = snapshots.find(session, experiment, arg)
        return f"model:{model.version}", {"type": "model", "version": model.version}
    raise ValidationFailed.field("candidate", "must be model:<version>, model:latest, "
                                 "fixed:<action_id> or uniform")


def evidence(session: Session, experiment: Experiment, name: str
             ) -> tuple[OpeReport | None, dict[str, Any] | None]:
    """The newest stored report that evaluated ``name``, and its entry for it."""
    rows = session.scalars(sa.select(OpeReport).where(OpeReport.experiment_id == experiment.id)
                           .order_by(OpeReport.id.desc()).limit(REPORTS_SEARCHED))
    for row in rows:
        entry = (row.report.get("candidates") or {}).get(name)
        if entry is not None:
            return row, entry
    return None, None


def problems(session: Session, experiment: Experiment, name: str, rules: Rules,
             row: OpeReport | None, entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Why the stored evidence does not allow promoting ``name`` (empty: it does)."""
    if row is None or entry is None:
        return [{"code": "no_report", "message": f"no stored OPE report evaluated {name}: "
                 f"GET .../reports/ope?candidates={name} first"}]
    found = []
    current = experiment.settings.champion
    if row.report["champion"]["candidate"] != current:
        found.append({"code": "other_champion", "message": (
            f"report {row.id} compared {name} with {row.report['champion']['candidate']}, "
            f"but the champion is now {current}")})
    verdict = entry["vs_champion"]["verdict"]
    if verdict != "better":
        found.append({"code": "not_better", "message": (
            f"report {row.id} says {verdict}: the lower bound of the difference "
            f"({entry['vs_champion']['estimator']}) is {_short(entry['vs_champion']['ci_low'])}"
            ", not above 0")})
    return found + _staleness(session, experiment, rules, row)


def _short(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def _staleness(session: Session, experiment: Experiment, rules: Rules,
               row: OpeReport) -> list[dict[str, Any]]:
    found = []
    age = clock.now() - row.created_at
    if age > rules.max_age_seconds:
        found.append({"code": "stale_report", "message": (
            f"report {row.id} is {age / 3600:.1f} h old (limit "
            f"{rules.max_age_seconds / 3600:.1f} h): compute a new one")})
    then, now = row.report["n_decisions"], count(session, scope_of(session, experiment))
    if now > then * (1 + rules.max_growth):
        found.append({"code": "stale_report", "message": (
            f"report {row.id} read {then} decisions, there are {now} now (more than "
            f"{rules.max_growth:.0%} new): compute a new one")})
    return found


def promote(session: Session, command: Promote) -> dict[str, Any]:
    """Make a candidate the champion (commits).

    Raises:
        ValidationFailed: A bad value or an unpromotable candidate.
        Conflict: The evidence does not allow it (without ``force``), or it is already
            the champion.
    """
    _check(command)
    experiment = command.experiment
    name, champion = champion_config(session, experiment, command.candidate)
    previous = experiment.settings.champion_rule.to_json()
    if champion == previous:
        raise Conflict(f"{name} is already the champion")
    row, entry = evidence(session, experiment, name)
    refused = problems(session, experiment, name, command.rules, row, entry)
    if refused and not command.force:
        raise Conflict(f"promotion of {name} refused: " + "; ".join(
            p["message"] for p in refused) + " (an admin may pass force: true)", refused)
    details = {"candidate": name, "champion": champion, "previous_champion": previous,
               "report_id": row.id if row else None,
               "verdict": entry["vs_champion"]["verdict"] if entry else None,
               "forced": command.force, "overridden": [p["code"] for p in refused],
               "reason": command.reason}
    return _apply(session, experiment, champion, "promote", command.actor, details)


def _apply(session: Session, experiment: Experiment, champion: dict[str, Any], change: str,
           actor: audit.Actor | audit.KeyPrincipal, details: dict[str, Any]) -> dict[str, Any]:
    # A champion no longer valid for the catalog is refused (400), not stored.
    registry.stage_change(session, registry.ChangeConfig(
        experiment, {"champion": champion}, change, audit.actor_name(actor)[:64], details))
    audit.record(session, actor, f"experiment.{change}", experiment.key,
                 {**details, "version": experiment.version})
    session.commit()
    return {"experiment": experiment.key, "version": experiment.version, **details}


def rollback(session: Session, experiment: Experiment,
             actor: audit.Actor | audit.KeyPrincipal) -> dict[str, Any]:
    """Restore the champion the newest un-rolled-back promotion replaced (commits).

    Raises:
        Conflict: No promotion to roll back.
    """
    rows = session.scalars(sa.select(ExperimentHistory).where(
        ExperimentHistory.experiment_id == experiment.id,
        ExperimentHistory.change.in_(("promote", "rollback")))
        .order_by(ExperimentHistory.version.desc()))
    undone: set[int | None] = set()
    for row in rows:
        details = row.details or {}
        if row.change == "rollback":
            undone.add(details.get("undoes_version"))
        elif row.version not in undone:
            return _undo(session, experiment, row, actor)
    raise Conflict("nothing to roll back: no promotion in this experiment's history")


def _undo(session: Session, experiment: Experiment, promotion: ExperimentHistory,
          actor: audit.Actor | audit.KeyPrincipal) -> dict[str, Any]:
    before = session.scalars(sa.select(ExperimentHistory).where(
        ExperimentHistory.experiment_id == experiment.id,
        ExperimentHistory.version == promotion.version - 1)).first()
    if before is None:
        raise NotFound(f"history version {promotion.version - 1} is missing")
    champion = before.settings.champion_rule
    if champion.type == "model":
        try:
            snapshots.find(session, experiment, str(champion.version))
        except NotFound:
            raise Conflict(f"cannot roll back to {champion.spec}: that snapshot "
                           "no longer exists") from None
    details = {"candidate": champion.spec, "champion": champion.to_json(),
               "previous_champion": experiment.settings.champion_rule.to_json(),
               "undoes_version": promotion.version,
               "undoes_candidate": (promotion.details or {}).get("candidate")}
    return _apply(session, experiment, champion.to_json(), "rollback", actor, details)
