"""The A/B significance report of an experiment (``GET /v1/experiments/{key}/reports/ab``).

Reads SQL aggregates (:mod:`experiments.reports.sql`), analyses them with
:mod:`experiments.abstats`, and returns the JSON document of API.md (field names kept,
more fields added). Read-only: nothing is written or committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments import clock
from experiments.abstats import SRMResult, StatWarning, sample_size_warnings, srm_test
from experiments.models import Experiment
from experiments.reports import comparisons, segments, sql
from experiments.reports.comparisons import ArmComparison
from experiments.reports.metrics import (
    EVENT_PREFIX,
    Looks,
    Metric,
    choose_looks,
    event_metric,
    reward_metric,
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


def event_types(config: Mapping[str, Any]) -> list[str]:
    """Event types that get a metric of their own: all of them when there are several.

    With a single event type its metric would repeat the reward (and enlarge the Holm
    family for nothing), so it is left out.
    """
    types = list(config["reward"]["events"])
    return types if len(types) > 1 else []


def build_report(session: Session, experiment: Experiment,
                 options: ReportOptions | None = None, *, now: float | None = None
                 ) -> dict[str, Any]:
    """The A/B report of ``experiment`` as a JSON-ready mapping.

    Args:
        session: A database session (read only).
        experiment: The experiment (its ``config`` gives arms, alpha and reward rule).
        options: Segment, lift for power, window handling.
        now: The report's clock (tests pin it); defaults to the wall clock.

    Returns:
        ``experiment``, ``alpha``, ``generated_at``, ``srm``, ``arms``, ``comparisons``,
        ``warnings`` (the API.md contract), then ``control``, ``metrics``, ``timeline``,
        ``segments``, ``power`` and ``notes``.
    """
    options = options or ReportOptions()
    config = experiment.config
    now = clock.now() if now is None else now
    alpha = float(config.get("alpha", 0.05))
    scope = sql.Scope(experiment.id, float(config["reward"]["default"]), now,
                      options.include_open)
    sql.tune(session)
    hours = sql.reward_by_arm_hour(session, scope)
    arms = arm_order(config["arms"], {arm for arm, _ in hours})
    control = control_arm(arms)
    looks = choose_looks(h for _, h in hours)
    metrics = _metrics(session, scope, config, hours, arms, looks)
    family = [c for m in metrics for c in comparisons.compare_metric(m, control, alpha,
                                                                     options.lift)]
    online = {arm: sum(r.online for (a, _), r in hours.items() if a == arm) for arm in arms}
    srm = srm_test(online, config["arms"])
    report = {
        "experiment": experiment.key, "alpha": alpha, "generated_at": clock.iso(now),
        "srm": _srm(srm),
        "arms": _arms(session, scope, metrics, hours, arms, alpha),
        "comparisons": comparisons.serialize(family, control, alpha),
        "warnings": [_warning(w) for w in _warnings(srm, metrics[0], family, arms, control)],
        "control": control, "include_open": options.include_open,
        "window_seconds": config["reward"]["window_seconds"],
        "metrics": [{"name": m.name, "binary": m.binary} for m in metrics],
        "timeline": timeline(metrics[0], looks, alpha),
        "segments": None, "power": {"lift": options.lift, "target": comparisons.TARGET_POWER},
    }
    if options.segment:
        report["segments"] = segments.breakdown(session, scope, options.segment, options.top,
                                                arms, control, alpha)
    report["notes"] = notes(options, control, len(family), looks, config)
    return report


def _metrics(session: Session, scope: sql.Scope, config: Mapping[str, Any],
             hours: Mapping[tuple[str, int], sql.HourRow], arms: list[str],
             looks: Looks) -> list[Metric]:
    reward = reward_metric(hours, arms, looks)
    types = event_types(config)
    if not types:
        return [reward]
    cells = sql.events_by_arm_hour(session, scope, types)
    return [reward, *(event_metric(t, cells, reward, looks) for t in types)]


def _arms(session: Session, scope: sql.Scope, metrics: list[Metric],
          hours: Mapping[tuple[str, int], sql.HourRow], arms: list[str],
          alpha: float) -> dict[str, Any]:
    units = sql.units_by_arm(session, scope)
    shares = segments.action_shares(sql.actions_by_arm(session, scope))
    reward, events = metrics[0], metrics[1:]
    out = {}
    for arm in arms:
        row = arm_row(reward.totals[arm], units.get(arm, 0), alpha, reward.binary)
        row["pending"] = sum(r.pending for (a, _), r in hours.items() if a == arm)
        row["metrics"] = {m.name: arm_row(m.totals[arm], None, alpha, m.binary)
                          for m in events}
        row["actions"] = shares.get(arm, {})
        out[arm] = row
    return out


def _srm(srm: SRMResult) -> dict[str, Any]:
    return {"p_value": srm.p_value, "mismatch": srm.mismatch, "expected": srm.expected,
            "observed": srm.observed, "reason": srm.reason and str(srm.reason),
            "threshold": 0.001}


def _warning(w: StatWarning) -> dict[str, str]:
    return {"code": w.code, "message": w.message}


def _warnings(srm: SRMResult, reward: Metric, family: list[ArmComparison], arms: list[str],
              control: str) -> list[StatWarning]:
    found = [*srm.warnings,
             *sample_size_warnings({a: reward.totals[a] for a in arms}, binary=reward.binary)]
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


def notes(options: ReportOptions, control: str, family_size: int, looks: Looks,
          config: Mapping[str, Any]) -> list[str]:
    """Plain-language statements of what the numbers mean (the report's ``notes``)."""
    window = ("Every activated decision counts, including those whose reward window is "
              "still open (their reward so far; `pending` counts them per arm). Use "
              "include_open=false to count closed windows only."
              if options.include_open else
              "Only decisions whose reward window has closed count (include_open=false).")
    found = [
        "n counts activated decisions outside the paused phase; mean is the reward per "
        f"decision, the default reward ({config['reward']['default']:g}) where none came.",
        window,
        f"Control: {control!r}" + ("." if control == CHAMPION else
                                   " (no arm is named 'champion': the first arm in config "
                                   "order is the control)."),
        f"significant uses Holm-adjusted p-values over all {family_size} comparisons "
        "(arms x metrics); p_value is unadjusted.",
        "p_value_sequential and ci_sequential_low/high are always-valid (mSPRT): safe to "
        f"check every {looks.unit}. The p-value is the running minimum over "
        f"{'hourly' if looks.unit == 'hour' else 'daily'} looks, "
        f"starting once both arms hold {comparisons.BURN_IN} decisions. p_value and "
        "ci_low/high are fixed-horizon: valid once, at a sample size fixed in advance.",
        "0/1 metrics use the two-proportion z-test with Newcombe's interval and Wilson "
        "intervals per arm; other metrics Welch's t-test and t intervals. lift_ci is the "
        "delta-method interval of the relative lift.",
        "SRM: chi-square of online-phase decisions per arm against the configured shares "
        "(flagged at p < 0.001); apprentice-phase decisions (all champion) are left out.",
    ]
    if event_types(config):
        found.append(f"Metrics {EVENT_PREFIX}<type>: per decision, the sum of that event "
                     "type's non-late values (0 when none came).")
    return found
