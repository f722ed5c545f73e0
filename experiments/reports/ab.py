"""The A/B significance report of an experiment (``GET /v1/experiments/{key}/reports/ab``).

Reads SQL aggregates (:mod:`experiments.reports.sql`), analyses them with
:mod:`experiments.abstats`, and returns the JSON document of API.md (field names kept,
more fields added). Read-only: nothing is written or committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments import clock, value_bounds
from experiments.abstats import SRMResult, StatWarning, sample_size_warnings, srm_test
from experiments.abstats.guards import SRM_THRESHOLD
from experiments.config import ExperimentConfig
from experiments.models import Experiment
from experiments.reports import analysis, comparisons, segments, sql, units
from experiments.reports.comparisons import ArmComparison
from experiments.reports.metrics import (
    EVENT_PREFIX,
    Looks,
    Metric,
    bucket_width,
    build_metrics,
    choose_looks,
)
from experiments.reports.options import ReportOptions
from experiments.reports.summaries import arm_row, timeline

CHAMPION = "champion"


def arm_order(shares: Mapping[str, float], seen: set[str]) -> list[str]:
    """Configured arms with a positive share (config order), then other arms with data.

    Examples:
        >>> arm_order({"champion": 0.5, "bandit": 0.5, "uniform": 0.0}, {"model:3"})
        ['champion', 'bandit', 'model:3']
    """
    live = [arm for arm, share in shares.items() if share > 0]
    return live + sorted(seen - set(live))


def control_arm(arms: list[str]) -> str:
    """``champion`` when it is an arm, else the first arm in config order."""
    return CHAMPION if CHAMPION in arms else arms[0]


def event_types(config: ExperimentConfig) -> list[str]:
    """Event types that get a metric of their own: all of them when there are several.

    With a single event type its metric would repeat the reward (and enlarge the
    correction's family for nothing), so it is left out unless a guardrail names it.
    """
    types = list(config.reward.events)
    guarded = [g.metric[len(EVENT_PREFIX):] for g in config.analysis.guardrails
               if g.metric.startswith(EVENT_PREFIX)]
    chosen = types if len(types) > 1 else []
    return chosen + [t for t in guarded if t in types and t not in chosen]


def build_report(session: Session, experiment: Experiment,
                 options: ReportOptions | None = None, *, now: float | None = None
                 ) -> dict[str, Any]:
    """The A/B report of ``experiment`` as a JSON-ready mapping, at the unit level.

    Args:
        session: A database session (read only).
        experiment: The experiment (its ``config`` gives arms, alpha, reward rule and
            analysis settings).
        options: Segment, lift for power, window handling, correction.
        now: The report's clock (tests pin it); defaults to the wall clock.

    Returns:
        ``experiment``, ``alpha``, ``generated_at``, ``srm``, ``arms``, ``comparisons``,
        ``warnings`` (the API.md contract), then ``analysis_unit``, ``decision``,
        ``guardrails``, ``control``, ``metrics``, ``timeline``, ``segments``, ``power``
        and ``notes``.
    """
    options = options or ReportOptions()
    config = experiment.settings
    now = clock.now() if now is None else now
    alpha = config.alpha
    settings = config.analysis
    adjustment = analysis.adjustment_of(settings, options.adjustment)
    scope = sql.Scope(experiment.id, float(config.reward.default), now,
                      options.include_open)
    sql.tune(session)
    seconds, unit_name = bucket_width(*units.span(session, scope))
    types = event_types(config)
    covariate = settings.cuped_covariate
    req = units.Request(events=types, bucket_seconds=seconds,
                        covariate=tuple(covariate.split(".")) if covariate else None)
    cells = units.unit_cells(session, scope, req)
    arms = arm_order(config.arms, {arm for arm, _ in cells})
    control = control_arm(arms)
    looks = choose_looks((b for _, b in cells), seconds, unit_name)
    columns = {"reward": "m0", **{EVENT_PREFIX + t: f"m{i + 1}" for i, t in enumerate(types)}}
    metrics = build_metrics(cells, columns, arms, looks)
    shown = [m for m in metrics if m.name == "reward" or m.name[len(EVENT_PREFIX):] in
             event_types_shown(config)]
    if settings.per_unit_means:
        shown.append(metrics[0].per_unit())
    family = [c for m in shown for c in comparisons.compare_metric(m, control, alpha,
                                                                   options.lift)]
    srm = srm_test(sql.units_by_arm(session, scope, online_only=True), config.arms)
    rows = comparisons.serialize(family, control, alpha, adjustment)
    if covariate:
        adjusted = analysis.cuped_rows(metrics[0], cells, covariate, control, alpha)
        for row in rows:
            if row["metric"] == "reward":
                row["cuped"] = adjusted.get(row["arm"])
    guard = analysis.guardrails(metrics, settings.guardrails, control, alpha)
    srm_row = _srm(srm)
    verdict = analysis.decision(rows, family, guard, srm_row, alpha, options.lift)
    without_unit = {arm: sum(c.without_unit for (a, _), c in cells.items() if a == arm)
                    for arm in arms}
    section, actions = None, None
    if options.segment:
        section, actions = segments.breakdown(session, scope, options.segment, options.top,
                                              arms, control, alpha, adjustment)
    report = {
        "experiment": experiment.key, "alpha": alpha, "generated_at": clock.iso(now),
        "srm": srm_row,
        "arms": _arms(session, scope, shown, cells, arms, alpha, without_unit, actions),
        "comparisons": rows,
        "warnings": [_warning(w) for w in [
            *_warnings(srm, metrics[0], family, arms, control, without_unit, config),
            *_bounded(metrics)]],
        "analysis_unit": "unit", "decision": verdict.to_dict(), "guardrails": guard,
        "adjustment": adjustment, "cuped_covariate": covariate,
        "control": control, "include_open": options.include_open,
        "window_seconds": config.reward.window_seconds,
        "metrics": [{"name": m.name, "binary": m.binary} for m in shown],
        "timeline": timeline(metrics[0], looks, alpha),
        "segments": section,
        "power": {"lift": options.lift, "target": comparisons.TARGET_POWER,
                  "unit": "units per arm"},
    }
    report["notes"] = notes(options, control, len(family), looks, config, adjustment)
    return report


def event_types_shown(config: ExperimentConfig) -> list[str]:
    """Event types with a comparison row (all of them when there are several)."""
    types = list(config.reward.events)
    return types if len(types) > 1 else []


def _arms(session: Session, scope: sql.Scope, metrics: list[Metric],
          cells: Mapping[tuple[str, int], units.Cell], arms: list[str], alpha: float,
          without_unit: Mapping[str, int],
          actions: Mapping[tuple[str, str], int] | None = None) -> dict[str, Any]:
    # A segment breakdown has counted decisions per arm and action already (per segment).
    shares = segments.action_shares(actions if actions is not None
                                    else sql.actions_by_arm(session, scope))
    reward, events = metrics[0], metrics[1:]
    out = {}
    for arm in arms:
        row = arm_row(reward.totals[arm], alpha, reward.binary)
        row["pending"] = sum(c.pending for (a, _), c in cells.items() if a == arm)
        row["decisions_without_unit"] = without_unit.get(arm, 0)
        row["metrics"] = {m.name: arm_row(m.totals[arm], alpha, m.binary) for m in events}
        row["actions"] = shares.get(arm, {})
        out[arm] = row
    return out


def _srm(srm: SRMResult) -> dict[str, Any]:
    return {"p_value": srm.p_value, "mismatch": srm.mismatch, "expected": srm.expected,
            "observed": srm.observed, "reason": srm.reason and str(srm.reason),
            "threshold": SRM_THRESHOLD, "unit": "units"}


def _warning(w: StatWarning) -> dict[str, str]:
    return {"code": w.code, "message": w.message}


def _warnings(srm: SRMResult, reward: Metric, family: list[ArmComparison], arms: list[str],
              control: str, without_unit: Mapping[str, int],
              config: ExperimentConfig) -> list[StatWarning]:
    per_unit = {a: reward.totals[a].as_mean_stats() for a in arms}
    binary = reward.binary and all(s.one_per_unit for s in reward.totals.values())
    found = [*srm.warnings, *sample_size_warnings(per_unit, binary=binary)]
    decisions = sum(s.decisions for s in reward.totals.values())
    missing = sum(without_unit.values())
    if config.unit_field and decisions and missing > decisions / 2:
        found.append(StatWarning(
            "unit_field_missing", f"{missing:.0f} of {decisions:.0f} decisions have no unit "
            f"(the context lacks {config.unit_field!r}); each counts as a unit of its own, "
            "so returning customers are counted as new ones"))
    if control != CHAMPION:
        found.append(StatWarning("control_not_champion", f"no arm is named 'champion'; "
                                 f"{control!r} (the first arm in config order) is the control"))
    if len(arms) < 2:
        found.append(StatWarning("single_arm", "one arm only: nothing to compare"))
    for c in family:
        if c.result.reason:
            found.append(StatWarning(str(c.result.reason), f"{c.arm} vs {control} on "
                                     f"{c.metric}: {c.result.reason}; no test statistic"))
    return found


def _bounded(metrics: list[Metric]) -> list[StatWarning]:
    return [StatWarning(value_bounds.WARNING, value_bounds.warning_message(m.name))
            for m in metrics if m.bounded]


def notes(options: ReportOptions, control: str, family_size: int, looks: Looks,
          config: ExperimentConfig, adjustment: str = "holm") -> list[str]:
    """Plain-language statements of what the numbers mean (the report's ``notes``).

    Written for people: no parameter names, no code formatting.
    """
    window = ("Every activated decision counts, including those whose reward window is "
              "still open (with the reward received so far); the pending column counts "
              "them per arm. Ask for closed windows only to leave them out."
              if options.include_open else
              "Only decisions whose reward window has closed count.")
    correction = {"holm": "Holm's correction", "bh": "the Benjamini-Hochberg correction"}
    found = [
        "Arms are assigned per unit (a customer) and units come back, so the unit is what "
        "is analysed: a unit stays in the arm of its first decision, and a decision "
        "without a unit counts as a unit of its own.",
        "The mean is the reward per decision (the default reward of "
        f"{config.reward.default:g} where none came), computed as total reward over "
        "total decisions; its uncertainty comes from the spread between units (the delta "
        "method), not between decisions.",
        window,
        f"The control is the {control} arm" + ("." if control == CHAMPION else
                                               " (no arm is named champion, so the first "
                                               "arm in the configuration is the control)."),
        f"Significance uses {correction.get(adjustment, adjustment)} over all "
        f"{family_size} comparisons (arms times metrics); the unadjusted p-value is shown "
        "next to it.",
        "The always-valid p-value and interval may be checked as often as you like (every "
        f"{looks.unit}); the fixed-horizon ones are valid once, at a sample size chosen in "
        "advance. The verdict uses the always-valid test, so it can be read at any time.",
        "Where every unit has exactly one decision, 0/1 rewards use the two-proportion "
        "z-test and other rewards Welch's t-test; otherwise Welch's test runs on the "
        "unit-level variances, with degrees of freedom counted in units. The lift interval "
        "is the delta-method interval of the relative lift.",
        "The sample-ratio check compares units per arm (online phase only) with the "
        f"configured shares and raises an alarm below p = {SRM_THRESHOLD:g}. Decisions "
        "per unit differ between arms by chance and are shown for information only.",
        "Power, the minimum detectable lift and the sample size are in units per arm.",
    ]
    if event_types_shown(config):
        found.append("Each event type also gets a metric of its own: its non-late values "
                     "per decision (0 where none came).")
    return found
