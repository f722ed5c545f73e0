"""The one verdict of Tailor: ship, keep running, no difference, stop (harm), or invalid.

Every place that says whether a treatment beats the champion calls :func:`decide`: the
A/B report's ``decision`` (and the analyst page, which prints it), ``GET .../learning``
(``beats_champion.decision``) and the OPE report (``vs_champion.decision``). Each source
turns its own numbers into :class:`Evidence`; the rules are the same for all:

1. ``invalid`` when the data cannot be trusted (a sample-ratio mismatch over units,
   traffic to an arm configured with share 0);
2. ``keep_running`` when there is nothing to compare yet;
3. ``stop_harm`` when the treatment is significantly worse, or a guardrail shows harm
   beyond its margin;
4. ``ship`` when it is significantly better and every guardrail holds (a guardrail not yet
   shown within its margin turns a win into ``keep_running``);
5. ``no_difference`` when the interval of the lift lies within the equivalence margin
   (the lift the experiment was powered for), or the planned sample is reached without
   significance;
6. ``keep_running`` otherwise, with the units still needed per arm to detect the observed
   effect.

For the A/B report "significant" is the always-valid (sequential) p-value after the
report's multiple-testing correction, so the verdict may be read at any time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from experiments.interval import Interval

Verdict = Literal["ship", "keep_running", "no_difference", "stop_harm", "invalid"]
VERDICTS: tuple[Verdict, ...] = ("ship", "keep_running", "no_difference", "stop_harm",
                                 "invalid")
# How much each source is trusted when they disagree, most trusted first.
TRUST = ("ab", "ope", "progressive")
SOURCE_NAMES = {"ab": "the randomized A/B test", "ope": "the off-policy estimate",
                "progressive": "progressive validation"}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a source knows about one treatment against the control.

    Attributes:
        source: ``"ab"``, ``"ope"`` or ``"progressive"``.
        arm: The treatment (arm or candidate).
        metric: The metric in words (``"reward"``).
        diff: Treatment minus control.
        lift: Relative lift, ``None`` when undefined.
        interval: Interval shown with the verdict (of the lift when ``relative``).
        significant: The source's test rejects "no difference" (after its corrections).
        p_value: The p-value behind ``significant`` (``None`` for interval-only sources).
        invalid: Why the data cannot be trusted, in plain words (``None`` when fine).
        guardrails_breached: Guardrails not shown within their margin.
        guardrails_harmful: Guardrails with harm beyond the margin shown.
        equivalent: The lift's interval lies within the equivalence margin.
        planned_reached: The planned sample size has been reached.
        units_needed: More units per arm needed to detect the observed effect.
        relative: ``interval`` is of the relative lift (else of the difference).
    """

    source: str
    arm: str | None
    metric: str = "reward"
    diff: float | None = None
    lift: float | None = None
    interval: Interval | None = None
    significant: bool = False
    p_value: float | None = None
    invalid: str | None = None
    guardrails_breached: Sequence[str] = field(default_factory=tuple)
    guardrails_harmful: Sequence[str] = field(default_factory=tuple)
    equivalent: bool = False
    planned_reached: bool = False
    units_needed: int | None = None
    relative: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict with its reason in plain words.

    Attributes:
        verdict: One of :data:`VERDICTS`.
        arm: The arm the verdict is about (``None`` when none).
        reason: One sentence for people.
        units_needed: More units per arm needed (``keep_running`` only).
        source: Which evidence it rests on.
    """

    verdict: Verdict
    arm: str | None
    reason: str
    units_needed: int | None = None
    source: str = "ab"

    def to_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict, "arm": self.arm, "reason": self.reason,
                "units_needed": self.units_needed, "source": self.source}


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def describe(e: Evidence) -> str:
    """``reward +26.7% [+14.9%, +38.5%], always-valid p 0.004`` in plain words."""
    parts = [e.metric]
    if e.relative and e.lift is not None:
        parts.append(_pct(e.lift))
        if e.interval is not None:
            parts.append(f"[{_pct(e.interval.lower)}, {_pct(e.interval.upper)}]")
    elif e.diff is not None:
        parts.append(f"{e.diff:+.4g}")
        if e.interval is not None:
            parts.append(f"[{e.interval.lower:+.4g}, {e.interval.upper:+.4g}]")
    text = " ".join(parts)
    if e.p_value is not None:
        label = "always-valid p" if e.source == "ab" else "p"
        text += f", {label} {e.p_value:.2g}"
    return text


def decide(e: Evidence) -> Decision:
    """The verdict for one treatment (rules in the module docstring).

    Examples:
        >>> win = Evidence("ope", "model:3", diff=0.02, interval=Interval(0.01, 0.03),
        ...                significant=True, relative=False)
        >>> decide(win).verdict
        'ship'
        >>> decide(Evidence("ab", "bandit", invalid="unit counts do not match")).verdict
        'invalid'
    """
    if e.invalid:
        return Decision("invalid", None, f"Do not trust this comparison: {e.invalid}.",
                        source=e.source)
    if e.diff is None:
        return Decision("keep_running", e.arm, "Not enough data to compare yet.",
                        e.units_needed, e.source)
    shown = describe(e)
    if e.guardrails_harmful:
        return Decision("stop_harm", e.arm, f"{shown}; harm beyond the margin on "
                        f"{', '.join(e.guardrails_harmful)}.", source=e.source)
    if e.significant and e.diff < 0:
        return Decision("stop_harm", e.arm, f"{shown}: significantly worse than the control.",
                        source=e.source)
    if e.significant and e.diff > 0:
        if e.guardrails_breached:
            return Decision("keep_running", e.arm, f"{shown}, but not yet shown within the "
                            f"margin on {', '.join(e.guardrails_breached)}.",
                            e.units_needed, e.source)
        return Decision("ship", e.arm, f"{shown}; guardrails hold.", source=e.source)
    if e.equivalent or e.planned_reached:
        why = ("within the equivalence margin" if e.equivalent
               else "the planned sample is reached without a significant difference")
        return Decision("no_difference", e.arm, f"{shown}: {why}.", source=e.source)
    more = "" if e.units_needed is None else f" (about {e.units_needed:,} more units per arm)"
    return Decision("keep_running", e.arm, f"{shown}: not significant yet{more}.",
                    e.units_needed, e.source)


def decide_arms(evidence: Sequence[Evidence]) -> Decision:
    """One verdict over several treatments of one source.

    ``invalid`` if any is; else ``ship`` the best-lift shippable arm; else ``stop_harm``
    if any arm harms; else ``keep_running`` if any arm still runs (largest need); else
    ``no_difference``.
    """
    if not evidence:
        return Decision("keep_running", None, "Not enough data to compare yet.")
    decisions = [(e, decide(e)) for e in evidence]
    for verdict in ("invalid", "ship", "stop_harm", "keep_running"):
        found = [(e, d) for e, d in decisions if d.verdict == verdict]
        if found:
            if verdict == "ship":
                return max(found, key=lambda p: p[0].lift or 0.0)[1]
            if verdict == "keep_running":
                return max(found, key=lambda p: p[1].units_needed or 0)[1]
            return found[0][1]
    return decisions[0][1]


def reconcile(decisions: Sequence[Decision]) -> str | None:
    """When sources disagree, which to trust and why, in plain words (``None`` if agreed).

    Examples:
        >>> ab = Decision("keep_running", "bandit", "…", source="ab")
        >>> ope = Decision("ship", "model:3", "…", source="ope")
        >>> reconcile([ab, ope]).startswith("Trust the randomized A/B test")
        True
    """
    if len({d.verdict for d in decisions}) < 2:
        return None
    ranked = sorted(decisions, key=lambda d: TRUST.index(d.source))
    best = ranked[0]
    others = ", ".join(f"{SOURCE_NAMES[d.source]} says {d.verdict.replace('_', ' ')}"
                       for d in ranked[1:])
    why = {
        "ab": "it compares randomized groups of units on live traffic, so nothing but the "
              "arm differs between them; the off-policy estimate relies on logged "
              "propensities and a reward model, and progressive validation scores the model "
              "on the same stream it learns from",
        "ope": "it replays the champion's logged, randomized decisions; progressive "
               "validation scores the model on the stream it learns from",
        "progressive": "it is the only evidence available",
    }[best.source]
    return (f"Trust {SOURCE_NAMES[best.source]} ({best.verdict.replace('_', ' ')}): {why}. "
            f"Here {others}.")


def from_interval(source: str, arm: str | None, diff: float | None,
                  interval: Interval | None, metric: str = "value") -> Decision:
    """The verdict of an interval-only source (OPE, progressive validation).

    Significant when the interval of ``diff`` (treatment minus champion) excludes 0;
    an undefined interval (NaN bounds) or difference is not enough data.

    Examples:
        >>> from_interval("ope", "model:3", 0.02, Interval(0.01, 0.03)).verdict
        'ship'
        >>> from_interval("ope", "model:3", -0.01, Interval(-0.03, 0.01)).verdict
        'keep_running'
    """
    defined = diff is not None and diff == diff
    bounds = interval is not None and interval.lower == interval.lower \
        and interval.upper == interval.upper
    significant = bounds and interval is not None and (interval.lower > 0 or interval.upper < 0)
    return decide(Evidence(source, arm, metric, diff if defined else None, None,
                           interval if bounds else None, significant, relative=False))


def legacy_label(decision: Decision) -> str:
    """``better`` / ``worse`` / ``inconclusive``: the older verdict words of OPE and
    ``/learning``, derived from the one verdict (``ship`` is better, ``stop_harm`` worse).
    """
    return {"ship": "better", "stop_harm": "worse"}.get(decision.verdict, "inconclusive")
