"""Options of an OPE report, parsed from the query string or the command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments import clock
from experiments.errors import ValidationFailed
from experiments.ope import DM, DR, DROS, IPS, SNIPS, RatioEstimator, SwitchDR
from experiments.ope_report.candidates import split_names
from experiments.query_names import check_names

ESTIMATORS = ("ips", "snips", "dm", "dr", "switch-dr", "dr-os")
INTERVALS = ("analytic", "bootstrap", "sequence")
DEFAULT_VERDICT = "dr"
DEFAULT_BOOTSTRAP = 1000
SWITCH_TAU = 20.0
DROS_LAMBDA = 100.0
NAMES = ("candidates", "intervals", "estimator", "level", "bootstrap_samples", "seed",
         "since", "until")


@dataclass(frozen=True)
class OpeOptions:
    """What to compute.

    Attributes:
        candidates: Candidate names (empty: ``model:latest`` when a snapshot exists, and
            ``uniform``).
        intervals: ``analytic`` (normal, delta method), ``bootstrap`` (Poisson percentile
            bootstrap) or ``sequence`` (anytime-valid confidence sequence).
        verdict_estimator: Estimator whose paired difference gives ``vs_champion``.
        level: Coverage of the intervals.
        n_bootstrap: Bootstrap replicates (with ``intervals=bootstrap``).
        seed: Seed of the bootstrap generator (reports are reproducible).
        since: Only decisions logged at or after this epoch time.
        until: Only decisions logged before this epoch time.
    """

    candidates: tuple[str, ...] = ()
    intervals: str = "analytic"
    verdict_estimator: str = DEFAULT_VERDICT
    level: float = 0.95
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    seed: int = 0
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.intervals not in INTERVALS:
            raise _bad("intervals", f"must be one of {', '.join(INTERVALS)}")
        if self.verdict_estimator not in ESTIMATORS:
            raise _bad("estimator", f"must be one of {', '.join(ESTIMATORS)}")
        if not 0.5 <= self.level < 1.0:
            raise _bad("level", "must be in [0.5, 1)")
        if not 100 <= self.n_bootstrap <= 10_000:
            raise _bad("bootstrap_samples", "must be between 100 and 10000")
        if not 0 <= self.seed < 2**63:
            raise _bad("seed", "must be a non-negative integer")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise _bad("until", "must be later than since (an empty time range)")

    def estimator(self, name: str) -> RatioEstimator:
        """A fresh estimator of that name with these settings."""
        boot = self.n_bootstrap if self.intervals == "bootstrap" else 0
        common: dict[str, Any] = {"level": self.level, "n_bootstrap": boot}
        makers: dict[str, Any] = {
            "ips": lambda: IPS(**common), "snips": lambda: SNIPS(**common),
            "dm": lambda: DM(**common), "dr": lambda: DR(**common),
            "switch-dr": lambda: SwitchDR(tau=SWITCH_TAU, **common),
            "dr-os": lambda: DROS(lam=DROS_LAMBDA, **common)}
        return makers[name]()

    def describe(self) -> dict[str, Any]:
        return {"intervals": self.intervals, "level": self.level,
                "verdict_estimator": self.verdict_estimator,
                "bootstrap_samples": self.n_bootstrap if self.intervals == "bootstrap" else None,
                "switch_dr_tau": SWITCH_TAU, "dr_os_lambda": DROS_LAMBDA,
                "since": clock.iso(self.since), "until": clock.iso(self.until)}


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.field(field, message)


def _number(raw: str | None, field: str, kind: type, default: Any) -> Any:
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise _bad(field, f"must be a number, got {raw!r}") from None


def _since(raw: str | None, field: str = "since") -> float | None:
    if not raw:
        return None
    try:
        return clock.parse_iso(raw)
    except ValueError:
        raise _bad(field, "must be an ISO 8601 date-time") from None


def parse_options(args: Mapping[str, Any], candidates: Sequence[str] = ()) -> OpeOptions:
    """Options from query parameters (``candidates`` given separately: it may repeat);
    unknown or repeated names are refused."""
    check_names(args, NAMES, repeatable=("candidates",))
    return OpeOptions(
        candidates=tuple(split_names(candidates)),
        intervals=args.get("intervals") or "analytic",
        verdict_estimator=args.get("estimator") or DEFAULT_VERDICT,
        level=_number(args.get("level"), "level", float, 0.95),
        n_bootstrap=_number(args.get("bootstrap_samples"), "bootstrap_samples", int,
                            DEFAULT_BOOTSTRAP),
        seed=_number(args.get("seed"), "seed", int, 0),
        since=_since(args.get("since")),
        until=_since(args.get("until"), "until"),
    )
