"""The analyst pages' verdicts: the A/B decision next to the OPE and learner ones.

All three come from :func:`experiments.verdict.decide`; where they disagree the page says
which to trust and why (:func:`experiments.verdict.reconcile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from experiments.learning.status import learning_status
from experiments.models import Experiment
from experiments.verdict import Decision, reconcile

WORDS = {"ship": "Ship", "keep_running": "Keep running", "no_difference": "No difference",
         "stop_harm": "Stop: it does harm", "invalid": "Invalid"}
SOURCES = {"ab": "Randomized A/B test", "ope": "Off-policy estimate",
           "progressive": "Progressive validation"}


def _ope_decision(ope: Mapping[str, Any] | None) -> Decision | None:
    """The stored OPE report's best candidate, as a decision (``None`` without one)."""
    if not ope or not ope.get("candidates"):
        return None
    legacy = {"better": "ship", "worse": "stop_harm"}
    rows = []
    for name, entry in ope["candidates"].items():
        vs = entry.get("vs_champion") or {}
        verdict = vs.get("decision") or legacy.get(vs.get("verdict", ""), "keep_running")
        rows.append((verdict == "ship", vs.get("diff") or 0.0, name, verdict, vs))
    _, _, name, verdict, vs = max(rows, key=lambda r: (r[0], r[1]))
    reason = vs.get("decision_reason") or f"{name}: {vs.get('verdict', 'no verdict')}"
    return Decision(verdict, name, reason, source="ope")


def _learning_decision(session: Session, experiment: Experiment) -> tuple[Decision | None,
                                                                          dict[str, Any]]:
    status = learning_status(session, experiment)
    beats = status.get("beats_champion") or {}
    if not beats.get("decision") or beats.get("verdict") == "insufficient_data":
        return None, status
    return Decision(beats["decision"], "bandit", beats.get("decision_reason", ""),
                    source="progressive"), status


def page_verdicts(session: Session, experiment: Experiment, report: Mapping[str, Any],
                  ope: Mapping[str, Any] | None) -> dict[str, Any]:
    """Template variables: ``sources`` (one row per source), ``trust`` (a sentence or
    ``None``) and ``learning`` (the learner's status)."""
    d = report["decision"]
    found = [Decision(d["verdict"], d["arm"], d["reason"], d["units_needed"], "ab")]
    ope_decision = _ope_decision(ope)
    if ope_decision:
        found.append(ope_decision)
    learned, status = _learning_decision(session, experiment)
    if learned:
        found.append(learned)
    rows = [{"source": SOURCES[x.source], "verdict": x.verdict, "words": WORDS[x.verdict],
             "arm": x.arm, "reason": x.reason} for x in found]
    return {"sources": rows, "trust": reconcile(found), "learning": status,
            "verdict_words": WORDS}


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's part of a list row: units, headline lift with CI, verdict."""
    reward = [c for c in report["comparisons"] if c["metric"] == "reward"]
    head = next((c for c in reward if c["arm"] == report["decision"]["arm"]),
                reward[0] if reward else None)
    return {"units": sum(a["units"] for a in report["arms"].values()),
            "arm": head["arm"] if head else None,
            "lift": head["lift"] if head else None,
            "lift_ci_low": head["lift_ci_low"] if head else None,
            "lift_ci_high": head["lift_ci_high"] if head else None,
            "verdict": report["decision"]["verdict"],
            "words": WORDS[report["decision"]["verdict"]]}


def list_row(head: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The experiments list's row: units, headline lift with CI, verdict, model, lag."""
    return {**head, "model_version": status.get("model_version"),
            "lag_seconds": status.get("lag_seconds")}
