"""Import logged decisions from another system into an experiment's decision log.

Each record becomes a ``decisions`` row with phase ``imported`` and arm ``imported``
(``policy`` names the logging policy), activated and closed at its timestamp, with its
reward written directly to ``decisions.reward`` (no reward events): reports read it as a
decision whose window closed with that reward, or the default reward when it had none.
When the file gives only the chosen action's propensity, the stored pmf holds that
probability at the chosen position and null elsewhere (IPS, SNIPS and DR need only the
logged propensity; the bandit health check skips such decisions).

Idempotent by event id: records whose event id is already logged (``decision_keys``) are
skipped. Rows go in with one executemany per batch (thousands per transaction), their
keys with one INSERT ... SELECT per chunk in the same transaction. The PII rules of the
experiment apply to imported contexts as to rank calls. Imported decisions are not learned
by the online learner unless ``learn=True`` (they are marked skipped otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from experiments import clock, pii
from experiments.errors import DomainError
from experiments.learning.join import SKIPPED
from experiments.logio.records import LineError, LoggedRecord
from experiments.models import Decision, DecisionKey, Experiment, Team

PHASE = "imported"
ARM = "imported"
BATCH_SIZE = 5000
IN_CHUNK = 900  # ids per IN (...) list: under every backend's parameter limit


@dataclass
class ImportResult:
    """Counts of an import.

    Attributes:
        lines: Records read (non-blank lines, including skipped ones).
        inserted: New decisions written.
        existing: Records skipped because their event id was already logged.
        not_activated: Records of never-activated deferred decisions, skipped.
        invalid: Lines skipped as invalid (only with ``skip_invalid``).
        errors: The first few invalid lines' messages.
    """

    lines: int = 0
    inserted: int = 0
    existing: int = 0
    not_activated: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "inserted": self.inserted, "existing": self.existing,
                "not_activated": self.not_activated, "invalid": self.invalid,
                "errors": self.errors}


Progress = Callable[[ImportResult], None]


def import_records(session: Session, experiment: Experiment,
                   items: Iterable[tuple[int, LoggedRecord | None]], *,
                   policy: str = ARM, learn: bool = False, batch_size: int = BATCH_SIZE,
                   progress: Progress | None = None) -> ImportResult:
    """Write records as decisions, committing every ``batch_size`` records.

    Args:
        session: The session; this function commits each batch.
        experiment: The experiment the decisions belong to.
        items: ``(line number, record)`` pairs; a None record is a never-activated one.
        policy: Name of the logging policy, stored in ``decisions.policy``.
        learn: Leave the decisions to the online learner (default: mark them skipped).
        batch_size: Records per transaction.
        progress: Called with the running counts after each batch.

    Raises:
        ValidationFailed: A PII field in ``reject`` mode (naming the line).
    """
    result = ImportResult()
    writer = _Writer(session, experiment, policy[:160], learn)
    for batch in _batches(items, batch_size, result):
        writer.write(batch, result)
        if progress is not None:
            progress(result)
    return result


def _batches(items: Iterable[tuple[int, LoggedRecord | None]], size: int,
             result: ImportResult) -> Iterator[list[tuple[int, LoggedRecord]]]:
    batch: list[tuple[int, LoggedRecord]] = []
    for line, record in items:
        result.lines += 1
        if record is None:
            result.not_activated += 1
            continue
        batch.append((line, record))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Guard:
    """The experiment's PII rules for imported contexts, memoised: ``pii.guard`` costs about
    a millisecond per context and logs repeat contexts."""

    LIMIT = 100_000

    def __init__(self, session: Session, experiment: Experiment) -> None:
        self.rules = experiment.settings.pii
        self.salt = session.get(Team, experiment.team_id).pii_salt  # type: ignore[union-attr]
        self.cache: dict[str, dict[str, Any]] = {}

    def __call__(self, line: int, context: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(context, sort_keys=True, separators=(",", ":"))
        found = self.cache.get(key)
        if found is None:
            try:
                found = pii.guard(context, None, self.rules, self.salt).context
            except DomainError as exc:
                raise LineError(line, exc.message) from None
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            self.cache[key] = found
        return found


def pii_check(session: Session, experiment: Experiment) -> Callable[[int, LoggedRecord], None]:
    """A check for :func:`experiments.logio.reader.scan`: in ``reject`` mode, the
    experiment's PII rules accept the record's context (``hash`` mode never refuses)."""
    guard = _Guard(session, experiment)

    def check(line: int, record: LoggedRecord) -> None:
        if guard.rules.mode == "reject":
            guard(line, record.context)

    return check


class _Writer:
    """Turns batches of records into decision rows and inserts the new ones."""

    def __init__(self, session: Session, experiment: Experiment, policy: str,
                 learn: bool) -> None:
        self.session, self.experiment, self.policy = session, experiment, policy
        self.learned_version = None if learn else SKIPPED
        self.guard = _Guard(session, experiment)
        # id(list) -> (the list, its JSON); the list is kept so its id is never reused
        self.texts: dict[int, tuple[list[dict[str, Any]], str]] = {}

    def write(self, batch: list[tuple[int, LoggedRecord]], result: ImportResult) -> None:
        fresh = self._new_only(batch, result)
        rows = [self._row(line, record) for line, record in fresh]
        if rows:
            try:
                self._insert_rows(rows)
                self.session.commit()
            except IntegrityError:
                # Another writer took some of these event ids meanwhile: recount, retry once.
                self.session.rollback()
                rows = [r for r in rows if r["event_id"] not in self._existing(
                    [r["event_id"] for r in rows])]
                self._insert_rows(rows)
                self.session.commit()
                result.existing += len(fresh) - len(rows)
        result.inserted += len(rows)

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        """The decisions, then their keys; a key taken by another writer raises
        IntegrityError and nothing of the batch is kept."""
        if not rows:
            return
        self.session.execute(self._insert(), rows)
        event_ids = [r["event_id"] for r in rows]
        for start in range(0, len(event_ids), IN_CHUNK):
            self.session.execute(sa.insert(DecisionKey).from_select(
                ["experiment_id", "event_id", "decision_id", "created_at"],
                sa.select(Decision.experiment_id, Decision.event_id, Decision.id,
                          Decision.created_at)
                .where(Decision.experiment_id == self.experiment.id,
                       Decision.event_id.in_(event_ids[start:start + IN_CHUNK]))))

    def _insert(self) -> sa.Insert:
        """A Core INSERT whose ``actions`` arrive as JSON text: logs repeat the same action
        list on every line, so it is serialised once rather than once per row."""
        param = sa.bindparam("actions_json", type_=sa.Text)
        postgres = self.session.get_bind().dialect.name == "postgresql"
        value = sa.cast(param, JSONB) if postgres else param
        return sa.insert(cast(sa.Table, Decision.__table__)).values(actions=value)

    def _new_only(self, batch: list[tuple[int, LoggedRecord]],
                  result: ImportResult) -> list[tuple[int, LoggedRecord]]:
        existing = self._existing([r.event_id for _, r in batch])
        fresh = []
        for line, record in batch:
            if record.event_id in existing:
                result.existing += 1
                continue
            existing.add(record.event_id)  # a repeat within the file counts as existing
            fresh.append((line, record))
        return fresh

    def _existing(self, event_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), IN_CHUNK):
            chunk = event_ids[start:start + IN_CHUNK]
            found.update(self.session.scalars(sa.select(DecisionKey.event_id).where(
                DecisionKey.experiment_id == self.experiment.id,
                DecisionKey.event_id.in_(chunk))))
        return found

    def _actions_text(self, actions: list[dict[str, Any]]) -> str:
        text = self.texts.get(id(actions))
        if text is None or text[0] is not actions:
            text = (actions, json.dumps(actions, separators=(",", ":")))
            if len(self.texts) >= _Guard.LIMIT:
                self.texts.clear()
            self.texts[id(actions)] = text
        return text[1]

    def _row(self, line: int, record: LoggedRecord) -> dict[str, Any]:
        context = self.guard(line, record.context)
        ts = record.timestamp if record.timestamp is not None else clock.now()
        pmf: list[float | None] = list(record.pmf) if record.pmf is not None else \
            [record.propensity if i == record.chosen_index else None
             for i in range(len(record.actions))]
        return dict(
            experiment_id=self.experiment.id, event_id=record.event_id, request_hash=PHASE,
            arm=ARM, policy=self.policy, model_version=None,
            experiment_version=self.experiment.version, phase=PHASE, unit_id=None,
            context=context, actions_json=self._actions_text(record.actions), pmf=pmf,
            chosen_index=record.chosen_index,
            action_id=record.actions[record.chosen_index]["id"],
            propensity=record.propensity, deferred=False, activated_at=ts, closes_at=ts,
            reward=record.reward, reward_count=0 if record.reward is None else 1,
            learned_version=self.learned_version, created_at=ts)
