"""SQLAlchemy 2 models: the whole durable state of Tailor.

Timestamps are UNIX epoch seconds (float, UTC) so that SQLite and PostgreSQL compare,
bucket and index them identically; the API renders them as ISO 8601.

On PostgreSQL `decisions` and `reward_events` are partitioned by time (RANGE on
`created_at` / `received_at`; partitions are managed by `experiments.partitioning`).
PostgreSQL requires every unique constraint of a partitioned table to include the
partition key, so their primary keys are (id, time) and their idempotency keys live in
small unpartitioned tables (`decision_keys`, `reward_keys`). SQLite has the same tables,
unpartitioned, so that one model and one code path serve both.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from experiments.config import ExperimentConfig

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# An event id: Personalizer's 256 characters, or a multi-slot decision's
# `<eventId>\x1f<slotId>` (see experiments.slots). SQLite does not enforce VARCHAR lengths,
# so its columns keep the length they were created with (migration 0004 widens PostgreSQL's).
EVENT_ID_LENGTH = 520
EventId = sa.String(EVENT_ID_LENGTH).with_variant(sa.String(128), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class NextId(FunctionElement[int]):
    """The id of a new row of a table whose primary key is (id, time).

    PostgreSQL: the table's sequence (`<table>_id_seq`, also its server default).
    SQLite cannot autoincrement one column of a composite primary key, so the INSERT
    computes one more than the largest id. That is race-free because the subquery runs
    inside the INSERT, which holds SQLite's single write lock; ids of deleted rows at the
    top may be reused, as with SQLite's own rowids. A multi-row VALUES evaluates every
    subquery before inserting, which would repeat an id: the `<table>_id_unique` trigger
    (`sqlite_unique_id_trigger`) turns that into an IntegrityError instead.
    """

    type = sa.BigInteger()
    inherit_cache = True
    table_name = ""


class NextDecisionId(NextId):
    inherit_cache = True
    table_name = "decisions"


class NextRewardEventId(NextId):
    inherit_cache = True
    table_name = "reward_events"


@compiles(NextId)
def _next_id_by_max(element: NextId, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(SELECT coalesce(max(id), 0) + 1 FROM {element.table_name})"


@compiles(NextId, "postgresql")
def _next_id_from_sequence(element: NextId, compiler: SQLCompiler, **kw: Any) -> str:
    return f"nextval('{element.table_name}_id_seq')"


def sqlite_unique_id_trigger(table: str) -> str:
    """SQLite: the uniqueness of `id` alone, which the (id, time) primary key no longer
    enforces (PostgreSQL's sequence gives it there)."""
    return (f"CREATE TRIGGER {table}_id_unique BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) "
            f"BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: {table}.id'); END")


# A column pointing at another table's id without a foreign key (erasure follows both).
def references(target: str) -> dict[str, str]:
    return {"references": target}


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Key of the team's PII hashes: a hashed field still joins within the team, never across.
    pii_salt: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[float] = mapped_column(sa.Double)


class ApiKey(Base):
    """An API key: only a salted hash of its secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    key_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    salt: Mapped[str] = mapped_column(sa.String(64))
    secret_hash: Mapped[str] = mapped_column(sa.String(128))
    scope: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(128))
    default_experiment: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[float] = mapped_column(sa.Double)
    last_used_at: Mapped[float | None] = mapped_column(sa.Double)
    revoked_at: Mapped[float | None] = mapped_column(sa.Double)
    # Per-key overrides of the service's rate limits: {"rank": {"rate": r, "burst": b}}.
    rate_limits: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (sa.UniqueConstraint("team_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[float] = mapped_column(sa.Double)
    updated_at: Mapped[float] = mapped_column(sa.Double)

    @property
    def settings(self) -> ExperimentConfig:
        """The configuration, typed: parsed once per row as read and per stored version
        (a new `config` assigned is parsed again when next read)."""
        return _settings(self, self.config)


class ExperimentHistory(Base):
    """Every version of an experiment's configuration, and why it changed."""

    __tablename__ = "experiment_history"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    change: Mapped[str] = mapped_column(sa.String(32))
    actor: Mapped[str | None] = mapped_column(sa.String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[float] = mapped_column(sa.Double)

    @property
    def settings(self) -> ExperimentConfig:
        """This version's configuration, typed (parsed once per row as read)."""
        return _settings(self, self.config)


def _settings(row: Experiment | ExperimentHistory, config: dict[str, Any]) -> ExperimentConfig:
    # Kept on the row beside the configuration object it parsed: assigning a new
    # configuration (a new version) makes it stale, and it is parsed again.
    parsed: tuple[dict[str, Any], ExperimentConfig] | None = row.__dict__.get("_parsed")
    if parsed is None or parsed[0] is not config:
        parsed = (config, ExperimentConfig.parse(config))
        row.__dict__["_parsed"] = parsed
    return parsed[1]


class Decision(Base):
    """One rank answer: the audit record and the input of learning and every report."""

    __tablename__ = "decisions"
    # Idempotency (experiment_id, event_id) is unique in `decision_keys`: a unique
    # constraint here would have to include created_at (partitioning), so it would no
    # longer make a retry days later find the first decision.
    __table_args__ = (
        sa.Index("ix_decisions_experiment_closes", "experiment_id", "closes_at"),
        sa.Index("ix_decisions_experiment_created", "experiment_id", "created_at"),
        sa.Index("ix_decisions_event_id", "event_id"),
        # The learner's queue: closed decisions not yet learned (partial, so it stays small).
        sa.Index("ix_decisions_unlearned", "experiment_id", "closes_at",
                 postgresql_where=sa.text("learned_version IS NULL"),
                 sqlite_where=sa.text("learned_version IS NULL")),
        # Covers the A/B report's GROUP BY arm/hour/action/unit scans, so they read this
        # narrow index instead of the wide rows (context, actions, pmf): ~3-4x faster.
        sa.Index("ix_decisions_report", "experiment_id", "arm", "activated_at", "phase",
                 "closes_at", "created_at", "reward", "action_id", "unit_id"),
        # Each unit's decisions in time order, with the columns the unit-level report reads
        # (its window functions and per-unit sums): no table row is read, and on SQLite no
        # sort. Also serves the lookups of a unit's decisions.
        sa.Index("ix_decisions_unit_report", "experiment_id", "unit_id", "activated_at", "id",
                 "arm", "reward", "closes_at", "phase", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False,
                                    default=NextDecisionId())
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    event_id: Mapped[str] = mapped_column(EventId)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    arm: Mapped[str] = mapped_column(sa.String(64))
    policy: Mapped[str] = mapped_column(sa.String(160))
    model_version: Mapped[int | None] = mapped_column(sa.Integer)
    experiment_version: Mapped[int] = mapped_column(sa.Integer)
    phase: Mapped[str] = mapped_column(sa.String(16))
    unit_id: Mapped[str | None] = mapped_column(sa.String(256))
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    actions: Mapped[list[Any]] = mapped_column(JSONType)
    pmf: Mapped[list[float]] = mapped_column(JSONType)
    chosen_index: Mapped[int] = mapped_column(sa.Integer)
    action_id: Mapped[str] = mapped_column(sa.String(256))
    propensity: Mapped[float] = mapped_column(sa.Double)
    deferred: Mapped[bool] = mapped_column(sa.Boolean)
    activated_at: Mapped[float | None] = mapped_column(sa.Double)
    closes_at: Mapped[float | None] = mapped_column(sa.Double)
    reward: Mapped[float | None] = mapped_column(sa.Double)
    reward_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    learned_version: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[float] = mapped_column(sa.Double, primary_key=True)
    # The unit profile merged into `context` (experiments.profiles): its version, and
    # `used`, `missing`, `stale` or `expired` (NULL: the experiment reads no profile).
    profile_version: Mapped[int | None] = mapped_column(sa.Integer)
    profile_status: Mapped[str | None] = mapped_column(sa.String(16))


class DecisionKey(Base):
    """A decision's idempotency key: (experiment, event id) → the decision, for as long as
    the decision is kept. Written in the same step as the decision (`ranking`); retention
    deletes it with the decision's partition."""

    __tablename__ = "decision_keys"
    experiment_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(EventId, primary_key=True)
    decision_id: Mapped[int] = mapped_column(BigId, info=references("decisions.id"))
    # The decision's partition key: the lookup by (id, created_at) reads one partition.
    created_at: Mapped[float] = mapped_column(sa.Double)


def decision_of_key() -> sa.ColumnElement[bool]:
    """Join condition DecisionKey → its Decision, by the full primary key (one partition)."""
    return sa.and_(Decision.id == DecisionKey.decision_id,
                   Decision.created_at == DecisionKey.created_at)


class RewardEvent(Base):
    """A reward as received; `value` is already mapped by the experiment's reward rule."""

    __tablename__ = "reward_events"
    # (experiment_id, idempotency_key) is unique in `reward_keys`, for the reason given
    # on Decision.
    __table_args__ = (
        sa.Index("ix_reward_events_decision", "decision_id"),
        {"postgresql_partition_by": "RANGE (received_at)"},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False,
                                    default=NextRewardEventId())
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    # No foreign key: it would have to be (decision_id, decision_created_at) since the
    # decisions' key includes their partition key, every reward would check it across
    # partitions, and retention could not drop a day of decisions while rewards received
    # the next day (another partition) still point at it. Rewards resolve their decision
    # first in the same transaction (`rewards.find_target`) and erasure follows the
    # declared reference, so integrity is kept by the application.
    decision_id: Mapped[int] = mapped_column(BigId, info=references("decisions.id"))
    event_id: Mapped[str] = mapped_column(EventId)
    type: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float] = mapped_column(sa.Double)
    raw_value: Mapped[float | None] = mapped_column(sa.Double)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    late: Mapped[bool] = mapped_column(sa.Boolean)
    received_at: Mapped[float] = mapped_column(sa.Double, primary_key=True)


class RewardKey(Base):
    """A reward's idempotency key (rewards sent without one have none): a duplicate is
    counted once for as long as the reward event is kept."""

    __tablename__ = "reward_keys"
    experiment_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    reward_event_id: Mapped[int] = mapped_column(BigId, info=references("reward_events.id"))
    received_at: Mapped[float] = mapped_column(sa.Double)


for _table in ("decisions", "reward_events"):
    sa.event.listen(Base.metadata.tables[_table], "after_create",
                    sa.DDL(sqlite_unique_id_trigger(_table)).execute_if(dialect="sqlite"))


class Model(Base):
    """A VW model snapshot (the bytes `vw -i` reads) and its training counters."""

    __tablename__ = "models"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    arguments: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    examples_learned: Mapped[int] = mapped_column(sa.BigInteger)
    source: Mapped[str] = mapped_column(sa.String(32))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[float] = mapped_column(sa.Double)


class LearnerState(Base):
    """Per-experiment learner progress and lease; committed with the snapshot it belongs to."""

    __tablename__ = "learner_state"
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"), primary_key=True)
    watermark: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    counters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(128))
    lease_expires_at: Mapped[float | None] = mapped_column(sa.Double)
    updated_at: Mapped[float] = mapped_column(sa.Double)


class Candidate(Base):
    """A policy supplied by an analyst as probabilities per logged decision (`pmf:<name>`)."""

    __tablename__ = "candidates"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    name: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[float] = mapped_column(sa.Double)


class CandidatePmf(Base):
    __tablename__ = "candidate_pmfs"
    candidate_id: Mapped[int] = mapped_column(sa.ForeignKey("candidates.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(EventId, primary_key=True)
    pmf: Mapped[dict[str, float]] = mapped_column(JSONType)


class OpeReport(Base):
    """A computed OPE report, kept so that promotion can cite the evidence it relied on."""

    __tablename__ = "ope_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"), index=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[float] = mapped_column(sa.Double)


class AuditLog(Base):
    """Append-only record of administrative acts (who, what, when, how many rows)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    actor: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(256))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[float] = mapped_column(sa.Double)


class Profile(Base):
    """A unit's stored features (the feature store), per team: rank merges them into the
    context of experiments that ask for it (experiments.profiles)."""

    __tablename__ = "profiles"
    # The purge of expired profiles (experiments.retention) finds them without a scan.
    __table_args__ = (sa.Index("ix_profiles_expires_at", "expires_at"),)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), primary_key=True)
    # Clear, or the team's keyed hash when the id looks personal (as decisions store it).
    unit_id: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[float] = mapped_column(sa.Double)
    expires_at: Mapped[float | None] = mapped_column(sa.Double)
    # Field → vector of its `embedding` fields, computed by the write (stored_embeddings).
    embeddings: Mapped[dict[str, list[float]] | None] = mapped_column(JSONType)


class CatalogEmbeddings(Base):
    """Text → vector of an experiment's catalog `embedding` action fields, computed at
    registration and at every configuration change; rank reads them with the experiment
    (experiments.stored_embeddings). No row: the catalog has no such field."""

    __tablename__ = "catalog_embeddings"
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"),
                                               primary_key=True)
    vectors: Mapped[dict[str, list[float]]] = mapped_column(JSONType)


class ProfileEpoch(Base):
    """A team's profile change counter: every write adds one, and each worker polls it
    (at most once a second) to drop cached profiles that may have changed."""

    __tablename__ = "profile_epochs"
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id"), primary_key=True)
    counter: Mapped[int] = mapped_column(sa.BigInteger)


class ServiceSecret(Base):
    """A secret the service generates for itself once and shares between its workers and
    machines (the session-cookie signing key when TAILOR_SECRET_KEY is not configured)."""

    __tablename__ = "service_secrets"
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[float] = mapped_column(sa.Double)


class OfflineJob(Base):
    """A Personalizer-style background job (offline evaluation, feature importance): its
    request, status and result, polled by the client (`experiments.offline.jobs`)."""

    __tablename__ = "offline_jobs"
    __table_args__ = (sa.UniqueConstraint("experiment_id", "kind", "job_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    job_id: Mapped[str] = mapped_column(sa.String(256))
    name: Mapped[str] = mapped_column(sa.String(256))
    status: Mapped[str] = mapped_column(sa.String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(sa.Text)
    start_time: Mapped[float] = mapped_column(sa.Double)
    end_time: Mapped[float] = mapped_column(sa.Double)
    created_at: Mapped[float] = mapped_column(sa.Double)
    updated_at: Mapped[float] = mapped_column(sa.Double)


class PendingEvent(Base):
    """A reward (`kind` "reward", its mapped value) or an activation ("activate") for an
    event id with no decision yet (Personalizer endpoints only): applied when the decision
    arrives (`state` "joined"), or an orphan once `expires_at` passes ("orphan")."""

    __tablename__ = "pending_events"
    __table_args__ = (sa.Index("ix_pending_events_event", "experiment_id", "event_id",
                               "state"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id"))
    event_id: Mapped[str] = mapped_column(sa.String(EVENT_ID_LENGTH))
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[float | None] = mapped_column(sa.Double)
    received_at: Mapped[float] = mapped_column(sa.Double)
    expires_at: Mapped[float] = mapped_column(sa.Double)
    state: Mapped[str] = mapped_column(sa.String(16))
