"""partition decisions and reward events by time (PostgreSQL); idempotency keys tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

PostgreSQL: `decisions` becomes PARTITION BY RANGE (created_at) and `reward_events`
PARTITION BY RANGE (received_at), one partition per UTC day that holds rows, the next
days, and a DEFAULT partition. Their primary keys become (id, time) (PostgreSQL requires
the partition key in every unique constraint), so the idempotency constraints move to the
unpartitioned `decision_keys` / `reward_keys`, and the foreign key reward_events →
decisions is dropped (see experiments/models.py). Ids keep coming from the same sequences.

SQLite: the same tables and keys, unpartitioned; ids come from the INSERT (`NextId` in the
models) and a trigger keeps `id` unique.

Every row is copied into the new tables inside the migration's transaction: the tables
are locked while it runs, for a time proportional to their size.
"""
import time

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

DAY = 86400
AHEAD_DAYS = 7  # `tailor partitions maintain` (the learner runs it hourly) keeps this up

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _decision_columns():
    return [
        sa.Column('id', BIG_ID, autoincrement=False, nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=128), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('arm', sa.String(length=64), nullable=False),
        sa.Column('policy', sa.String(length=160), nullable=False),
        sa.Column('model_version', sa.Integer(), nullable=True),
        sa.Column('experiment_version', sa.Integer(), nullable=False),
        sa.Column('phase', sa.String(length=16), nullable=False),
        sa.Column('unit_id', sa.String(length=256), nullable=True),
        sa.Column('context', JSON, nullable=False),
        sa.Column('actions', JSON, nullable=False),
        sa.Column('pmf', JSON, nullable=False),
        sa.Column('chosen_index', sa.Integer(), nullable=False),
        sa.Column('action_id', sa.String(length=256), nullable=False),
        sa.Column('propensity', sa.Double(), nullable=False),
        sa.Column('deferred', sa.Boolean(), nullable=False),
        sa.Column('activated_at', sa.Double(), nullable=True),
        sa.Column('closes_at', sa.Double(), nullable=True),
        sa.Column('reward', sa.Double(), nullable=True),
        sa.Column('reward_count', sa.Integer(), nullable=False),
        sa.Column('learned_version', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.Double(), nullable=False),
    ]


def _reward_columns():
    return [
        sa.Column('id', BIG_ID, autoincrement=False, nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=False),
        sa.Column('decision_id', BIG_ID, nullable=False),
        sa.Column('event_id', sa.String(length=128), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Double(), nullable=False),
        sa.Column('raw_value', sa.Double(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=128), nullable=True),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.Column('received_at', sa.Double(), nullable=False),
    ]


def _decision_indexes():
    op.create_index('ix_decisions_event_id', 'decisions', ['event_id'])
    op.create_index('ix_decisions_experiment_closes', 'decisions', ['experiment_id', 'closes_at'])
    op.create_index('ix_decisions_experiment_created', 'decisions',
                    ['experiment_id', 'created_at'])
    op.create_index('ix_decisions_experiment_unit', 'decisions', ['experiment_id', 'unit_id'])
    op.create_index('ix_decisions_report', 'decisions',
                    ['experiment_id', 'arm', 'activated_at', 'phase', 'closes_at', 'created_at',
                     'reward', 'action_id', 'unit_id'])
    op.create_index('ix_decisions_unlearned', 'decisions', ['experiment_id', 'closes_at'],
                    postgresql_where=sa.text('learned_version IS NULL'),
                    sqlite_where=sa.text('learned_version IS NULL'))


def _reward_indexes():
    op.create_index('ix_reward_events_decision', 'reward_events', ['decision_id'])


def _experiment_fk(table):
    return sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'],
                                   name=f'fk_{table}_experiment_id_experiments')


def _is_postgresql():
    return op.get_bind().dialect.name == 'postgresql'


def _unique_id_trigger(table):
    return (f"CREATE TRIGGER {table}_id_unique BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) "
            f"BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: {table}.id'); END")


def _day_name(table, day):
    return f"{table}_p{time.strftime('%Y%m%d', time.gmtime(day * DAY))}"


def _create_partitions(table, old, key):
    """A DEFAULT partition, and one per UTC day holding rows of `old` or among the next
    AHEAD_DAYS, so that the copy fills day partitions and leaves the default empty."""
    bind = op.get_bind()
    days = {int(d) for d in bind.execute(sa.text(
        f"SELECT DISTINCT floor({key} / {DAY}) FROM {old}")).scalars()}
    today = int(time.time() // DAY)
    days.update(range(today - 1, today + AHEAD_DAYS + 1))
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    for day in sorted(days):
        op.execute(f"CREATE TABLE {_day_name(table, day)} PARTITION OF {table} "
                   f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})")


def _strip_postgresql(table):
    """Free the names the new table needs: index names are per schema on PostgreSQL."""
    bind = op.get_bind()
    for name in bind.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
            "AND contype IN ('p', 'u')"), {"t": table}).scalars():
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name in bind.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}).scalars():
        op.execute(f'DROP INDEX "{name}"')
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP DEFAULT")


def _rebuild(table, columns, constraints, indexes, partition_key=None):
    """Replace `table` by a new definition, copying every row (ids kept)."""
    names = ', '.join(f'"{c.name}"' for c in columns)
    old = f"{table}_old"
    if _is_postgresql():
        sequence = f"{table}_id_seq"
        op.execute(f"ALTER TABLE {table} RENAME TO {old}")
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
        _strip_postgresql(old)
        options = {'postgresql_partition_by': f'RANGE ({partition_key})'} if partition_key \
            else {}
        op.create_table(table, *columns, *constraints, **options)
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{sequence}')")
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
        if partition_key:
            _create_partitions(table, old, partition_key)
        op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {old}")
        op.execute(f"DROP TABLE {old}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_id_unique")
        op.create_table(f"{table}_new", *columns, *constraints)
        op.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
        op.execute(f"DROP TABLE {table}")  # its indexes go with it
        op.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    indexes()


def upgrade() -> None:
    op.create_table('decision_keys',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('decision_id', BIG_ID, nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('experiment_id', 'event_id', name=op.f('pk_decision_keys'))
    )
    op.create_table('reward_keys',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('reward_event_id', BIG_ID, nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('experiment_id', 'idempotency_key', name=op.f('pk_reward_keys'))
    )
    # reward_events first: once its foreign key to decisions is gone, decisions can be
    # dropped and rebuilt (SQLite checks foreign keys on DROP TABLE).
    _rebuild('reward_events', _reward_columns(), [
        _experiment_fk('reward_events'),
        sa.PrimaryKeyConstraint('id', 'received_at', name='pk_reward_events'),
    ], _reward_indexes, partition_key='received_at')
    _rebuild('decisions', _decision_columns(), [
        _experiment_fk('decisions'),
        sa.PrimaryKeyConstraint('id', 'created_at', name='pk_decisions'),
    ], _decision_indexes, partition_key='created_at')
    op.execute("INSERT INTO decision_keys (experiment_id, event_id, decision_id, created_at) "
               "SELECT experiment_id, event_id, id, created_at FROM decisions")
    op.execute("INSERT INTO reward_keys (experiment_id, idempotency_key, reward_event_id, "
               "received_at) SELECT experiment_id, idempotency_key, id, received_at "
               "FROM reward_events WHERE idempotency_key IS NOT NULL")
    if not _is_postgresql():
        op.execute(_unique_id_trigger('decisions'))
        op.execute(_unique_id_trigger('reward_events'))


def downgrade() -> None:
    """Back to single tables with global unique constraints (rows kept; the partitions go
    with their parents). Reward events whose decision retention already dropped cannot
    satisfy the foreign key of 0001: they are deleted."""
    op.execute("DELETE FROM reward_events WHERE NOT EXISTS (SELECT 1 FROM decisions "
               "WHERE decisions.id = reward_events.decision_id)")
    _rebuild('decisions', _decision_columns(), [
        _experiment_fk('decisions'),
        sa.PrimaryKeyConstraint('id', name='pk_decisions'),
        sa.UniqueConstraint('experiment_id', 'event_id',
                            name='uq_decisions_experiment_id_event_id'),
    ], _decision_indexes)
    _rebuild('reward_events', _reward_columns(), [
        _experiment_fk('reward_events'),
        sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'],
                                name='fk_reward_events_decision_id_decisions'),
        sa.PrimaryKeyConstraint('id', name='pk_reward_events'),
        sa.UniqueConstraint('experiment_id', 'idempotency_key',
                            name='uq_reward_events_experiment_id_idempotency_key'),
    ], _reward_indexes)
    op.drop_table('reward_keys')
    op.drop_table('decision_keys')
