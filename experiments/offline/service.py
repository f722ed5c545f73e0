"""Evaluation and feature-importance jobs: their requests, their computation, and applying
an evaluated policy as the experiment's learner setting (Personalizer's
``applyFromEvaluation``) under Tailor's promotion rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments import audit, clock, registry
from experiments.errors import Conflict, ValidationFailed
from experiments.models import Experiment, OfflineJob
from experiments.offline import evaluation, importance, jobs, vwargs
from experiments.offline.commands import ApplyEvaluation, StartEvaluation, StartImportance
from experiments.promotion import Rules


def start_evaluation(session: Session, experiment: Experiment,
                     command: StartEvaluation) -> OfflineJob:
    """A new evaluation job, `Running` (commits); the caller starts its computation.

    Raises:
        ValidationFailed: A custom policy's name is taken (Online, Baseline, Random, a
            policy of the optimization grid, an earlier one) or its VW arguments are not
            a learner setting of this experiment.
        Conflict: An evaluation with this id exists.
    """
    names = {"Online", "Baseline", "Random",
             *(evaluation.grid_name(e, p) for e, p in evaluation.OPTIMIZATION_GRID)}
    for index, policy in enumerate(command.policies):
        if policy.name in names:
            raise ValidationFailed.field(f"policies[{index}].name", "must be a unique name "
                                         "(not Online, Baseline or Random)")
        names.add(policy.name)
        vwargs.read(policy.arguments, experiment.settings.reward.raw,
                    f"policies[{index}].arguments")
    stored = {"policies": [{"name": p.name, "arguments": p.arguments}
                           for p in command.policies], "optimize": command.optimize}
    return jobs.create(session, experiment, "evaluation", command.job_id, command.window,
                       stored)


def start_importance(session: Session, experiment: Experiment,
                     command: StartImportance) -> OfflineJob:
    """A new feature-importance job, `Running` (commits); the caller computes it.

    Raises:
        Conflict: A feature importance with this id exists.
    """
    return jobs.create(session, experiment, "featureimportance", command.job_id,
                       command.window, {})


def _optimize(job: OfflineJob) -> bool:
    # Rows stored before the command existed kept Personalizer's own field name.
    return bool(job.request.get("optimize", job.request.get("enablePolicyOptimization")))


def compute_evaluation(session: Session, experiment: Experiment,
                       job: OfflineJob) -> dict[str, Any]:
    found = evaluation.policies(experiment, job.request.get("policies") or [],
                                _optimize(job))
    result = evaluation.evaluate(session, experiment, found, job.start_time, job.end_time)
    result["optimalPolicy"] = evaluation.optimal(result)
    return result


def compute_importance(session: Session, experiment: Experiment,
                       job: OfflineJob) -> dict[str, Any]:
    return importance.compute(session, experiment, job.start_time, job.end_time)


COMPUTE = {"evaluation": compute_evaluation, "featureimportance": compute_importance}


def _policy(job: OfflineJob, name: str) -> Mapping[str, Any]:
    for entry in (job.result or {}).get("policies", []):
        if entry["name"] == name:
            return entry
    raise ValidationFailed.field("policyName", f"evaluation {job.job_id!r} has no policy "
                                 f"{name!r}")


def refusals(experiment: Experiment, job: OfflineJob, entry: Mapping[str, Any],
             rules: Rules) -> list[dict[str, str]]:
    """Why applying ``entry`` is refused (empty: it may be applied)."""
    found = []
    online = vwargs.candidate_name(experiment.settings.learner.raw)
    if job.result is not None and job.result["online"] != online:
        found.append({"code": "other_online", "message": "the evaluation compared with "
                      f"{job.result['online']}, but the learner is now {online}"})
    versus = entry["estimates"].get("vs_champion") or {}
    if entry["policySource"] in evaluation.LEARNING_SETTINGS \
            and versus.get("verdict") != "better":
        low = versus.get("ci_low")
        found.append({"code": "not_better", "message": (
            f"{entry['name']} is {versus.get('verdict')} than Online: the lower bound of the "
            f"DR difference is {'undefined' if low is None else f'{low:.4g}'}, not above 0")})
    age = clock.now() - job.updated_at
    if age > rules.max_age_seconds:
        found.append({"code": "stale_report", "message": f"the evaluation is "
                      f"{age / 3600:.1f} h old (limit {rules.max_age_seconds / 3600:.1f} h)"})
    return found


def apply_from_evaluation(session: Session, experiment: Experiment, command: ApplyEvaluation,
                          actor: audit.Actor | audit.KeyPrincipal, rules: Rules) -> bool:
    """Make an evaluated policy the learner setting (commits). False: nothing to change.

    Raises:
        ValidationFailed: An unknown policy, or one that is not a learner setting
            (Baseline, Random).
        NotFound: An unknown evaluation.
        Conflict: The evaluation has not succeeded, or the promotion rules refuse.
    """
    evaluation_id, name = command.evaluation_id, command.policy_name
    job = jobs.find(session, experiment, "evaluation", evaluation_id)
    if jobs.status(job) != "Succeeded":
        raise Conflict(f"evaluation {evaluation_id!r} is {jobs.status(job)}, not Succeeded")
    entry = _policy(job, name)
    if entry["policySource"] not in evaluation.APPLICABLE:
        raise ValidationFailed.field("policyName", f"{name!r} is the {entry['policySource']} "
                                     "policy, not a learning setting")
    refused = refusals(experiment, job, entry, rules)
    if refused:
        raise Conflict(f"applying {name!r} is refused: " + "; ".join(
            r["message"] for r in refused), refused)
    if entry["policySource"] == "Online":
        return False
    learner = {**entry["learner"], "mode": experiment.settings.learner.mode}
    details = {"evaluation": evaluation_id, "policy": name, "learner": learner,
               "previous_learner": experiment.settings.learner.raw,
               "vs_online": entry["estimates"]["vs_champion"]}
    if not registry.stage_change(session, registry.ChangeConfig(
            experiment, {"learner": learner}, "apply_from_evaluation",
            audit.actor_name(actor)[:64], details)):
        return False  # the evaluated setting is the current one
    audit.record(session, actor, "learner.apply_from_evaluation", experiment.key, details)
    session.commit()
    return True
