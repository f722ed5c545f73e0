"""The offline jobs' commands: what the Personalizer adapter parses its bodies into.

`app.personalizer.job_bodies` turns the wire JSON (camelCase, Personalizer's field names)
into these frozen records; `experiments.offline.service` takes them and checks only what
needs the experiment (a custom policy's VW arguments against its reward rule).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobWindow:
    """A job's name and the decisions' time window, epoch seconds, `start < end`."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class CustomPolicy:
    """A policy to evaluate beside Online, Baseline and Random: its VW arguments."""

    name: str
    arguments: str


@dataclass(frozen=True)
class StartEvaluation:
    """Evaluate the online policy, the baseline, random and `policies` on the window;
    `optimize`: also the grid of learner settings (Personalizer's policy optimization)."""

    job_id: str
    window: JobWindow
    policies: tuple[CustomPolicy, ...] = ()
    optimize: bool = False


@dataclass(frozen=True)
class StartImportance:
    """Compute feature importances on the window's decisions."""

    job_id: str
    window: JobWindow


@dataclass(frozen=True)
class ApplyEvaluation:
    """Make `policy_name` of a succeeded evaluation the experiment's learner setting."""

    evaluation_id: str
    policy_name: str
