"""Candidate policies supplied by an analyst as probabilities per logged decision (``pmf:``).

A file holds one JSON object per line, plain or gzipped::

    {"event_id": "obd-men-0", "pmf": {"30": 1.0}}

(actions not listed have probability 0). Every line must name a decision logged in the
experiment, list only actions that decision offered, and give probabilities in [0, 1]
summing to 1 (within 1e-6). The file is stored all or nothing: one bad line, named in the
error, stores nothing. Each report then needs the candidate's pmf for every decision it
reads, and names the decisions that have none.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from experiments import clock
from experiments.errors import Conflict, NotFound, ValidationFailed
from experiments.logio.records import LineError, json_lines, load_line, open_text
from experiments.models import Candidate, CandidatePmf, Decision, Experiment

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BATCH = 5000
IN_CHUNK = 900
TOLERANCE = 1e-6


@dataclass(frozen=True)
class CandidateInfo:
    """A stored candidate: its name, how many decisions it covers, when it was added."""

    name: str
    decisions: int
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "candidate": f"pmf:{self.name}",
                "decisions": self.decisions, "created_at": clock.iso(self.created_at)}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationFailed.field("name", "must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def find(session: Session, experiment: Experiment, name: str) -> Candidate:
    candidate = session.scalars(sa.select(Candidate).where(
        Candidate.experiment_id == experiment.id, Candidate.name == name)).first()
    if candidate is None:
        raise NotFound(f"no candidate {name!r}: add it with `tailor candidates add`")
    return candidate


def add(session: Session, experiment: Experiment, name: str, path: str | Path, *,
        replace: bool = False, progress: Callable[[int], None] | None = None) -> CandidateInfo:
    """Store a candidate's pmfs from a JSON Lines file, all or nothing (commits).

    Raises:
        ValidationFailed: A bad line (the message names it), or a bad name.
        Conflict: The name is taken and ``replace`` is False.
    """
    check_name(name)
    candidate = _fresh_candidate(session, experiment, name, replace)
    cache: dict[str, set[str]]
    stored, cache = 0, {}
    try:
        for batch in _batches(path):
            _store(session, experiment, candidate, batch, cache)
            stored += len(batch)
            if progress is not None:
                progress(stored)
    except LineError as exc:
        session.rollback()
        raise ValidationFailed(str(exc), [{"line": exc.line, "message": exc.reason}]) from None
    if stored == 0:
        session.rollback()
        raise ValidationFailed.field("file", "holds no candidate pmf lines")
    session.commit()
    return CandidateInfo(name, stored, candidate.created_at)


def _fresh_candidate(session: Session, experiment: Experiment, name: str,
                     replace: bool) -> Candidate:
    old = session.scalars(sa.select(Candidate).where(
        Candidate.experiment_id == experiment.id, Candidate.name == name)).first()
    if old is not None:
        if not replace:
            raise Conflict(f"candidate {name!r} exists; pass --replace to overwrite it")
        remove(session, old)
    candidate = Candidate(experiment_id=experiment.id, name=name, created_at=clock.now())
    session.add(candidate)
    session.flush()
    return candidate


def remove(session: Session, candidate: Candidate) -> None:
    """Delete a candidate and its pmfs (the caller commits)."""
    session.execute(sa.delete(CandidatePmf).where(CandidatePmf.candidate_id == candidate.id))
    session.delete(candidate)
    session.flush()


def _batches(path: str | Path) -> Iterator[list[tuple[int, str, dict[str, float]]]]:
    seen: set[str] = set()
    batch: list[tuple[int, str, dict[str, float]]] = []
    with open_text(path) as handle:
        for line, text in json_lines(handle):
            event_id, pmf = parse_line(load_line(line, text), line)
            if event_id in seen:
                raise LineError(line, f"event_id {event_id!r} appears twice")
            seen.add(event_id)
            batch.append((line, event_id, pmf))
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def parse_line(obj: Any, line: int) -> tuple[str, dict[str, float]]:
    """``(event_id, {action: p})`` with the zero entries dropped."""
    if not isinstance(obj, Mapping):
        raise LineError(line, 'each line must be an object {"event_id": ..., "pmf": {...}}')
    event_id = obj.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise LineError(line, "event_id must be a non-empty string")
    pmf = obj.get("pmf")
    if not isinstance(pmf, Mapping) or not pmf:
        raise LineError(line, "pmf must be a non-empty object {action_id: probability}")
    for action, p in pmf.items():
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise LineError(line, f"pmf[{action!r}] must be a number in [0, 1], got {p!r}")
    total = math.fsum(pmf.values())
    if abs(total - 1.0) > TOLERANCE:
        raise LineError(line, f"pmf sums to {total:.9g}, not 1")
    # Stored normalised, so float drift of the file never fails the estimators' check.
    return event_id, {str(a): float(p) / total for a, p in pmf.items() if p > 0}


def _store(session: Session, experiment: Experiment, candidate: Candidate,
           batch: list[tuple[int, str, dict[str, float]]], cache: dict[str, set[str]]) -> None:
    offered = _offered(session, experiment.id, [event_id for _, event_id, _ in batch], cache)
    for line, event_id, pmf in batch:
        actions = offered.get(event_id)
        if actions is None:
            raise LineError(line, f"event_id {event_id!r} is not a decision of "
                            f"experiment {experiment.key!r}")
        unknown = sorted(set(pmf) - actions)
        if unknown:
            raise LineError(line, f"action {unknown[0]!r} was not offered in decision "
                            f"{event_id!r}")
    session.execute(sa.insert(cast(sa.Table, CandidatePmf.__table__)), [
        {"candidate_id": candidate.id, "event_id": event_id, "pmf": pmf}
        for _, event_id, pmf in batch])


def _offered(session: Session, experiment_id: int, event_ids: list[str],
             cache: dict[str, set[str]]) -> dict[str, set[str]]:
    """Offered action ids per event id (action lists repeat: each text is decoded once)."""
    found: dict[str, set[str]] = {}
    for start in range(0, len(event_ids), IN_CHUNK):
        rows = session.execute(sa.select(Decision.event_id, sa.cast(Decision.actions, sa.Text))
                               .where(Decision.experiment_id == experiment_id,
                                      Decision.event_id.in_(event_ids[start:start + IN_CHUNK])))
        for event_id, text in rows:
            ids = cache.get(text)
            if ids is None:
                if len(cache) > 10_000:
                    cache.clear()
                ids = cache[text] = {a["id"] for a in json.loads(text)}
            found[event_id] = ids
    return found


def listing(session: Session, experiment: Experiment) -> list[CandidateInfo]:
    """The experiment's supplied candidates with their decision counts."""
    rows = session.execute(
        sa.select(Candidate.name, sa.func.count(CandidatePmf.event_id), Candidate.created_at)
        .outerjoin(CandidatePmf, CandidatePmf.candidate_id == Candidate.id)
        .where(Candidate.experiment_id == experiment.id)
        .group_by(Candidate.id, Candidate.name, Candidate.created_at).order_by(Candidate.name))
    return [CandidateInfo(name, int(n), created) for name, n, created in rows]
