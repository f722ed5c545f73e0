"""Personalizer event ids of 256 characters (multi-slot: event id + slot id); pending
rewards and activations of event ids not (yet) known

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-07

`event_id` columns widen from 128 to 520 characters: Personalizer accepts event ids of 256,
and a multi-slot decision's id is `<eventId>\\x1f<slotId>` (both up to 256). On PostgreSQL
widening a varchar is a catalog change (no rewrite), also on the partitioned tables; SQLite
does not enforce lengths.

`pending_events`: a reward or activation that reached the Personalizer endpoints before
its decision (cutover traffic, asynchronous pipelines) is kept here until its decision
arrives (then applied) or its window passes (then counted as an orphan).
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

WIDENED = (('decisions', 'event_id'), ('decision_keys', 'event_id'),
           ('reward_events', 'event_id'), ('candidate_pmfs', 'event_id'))


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.String(520),
                            existing_type=sa.String(128), existing_nullable=False)
    op.create_table(
        'pending_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('experiment_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=520), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('value', sa.Double(), nullable=True),
        sa.Column('received_at', sa.Double(), nullable=False),
        sa.Column('expires_at', sa.Double(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'],
                                name=op.f('fk_pending_events_experiment_id_experiments')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_events')),
    )
    op.create_index('ix_pending_events_event', 'pending_events',
                    ['experiment_id', 'event_id', 'state'])


def downgrade():
    op.drop_index('ix_pending_events_event', table_name='pending_events')
    op.drop_table('pending_events')
    if op.get_bind().dialect.name == 'postgresql':
        for table, column in WIDENED:
            op.alter_column(table, column, type_=sa.String(128),
                            existing_type=sa.String(520), existing_nullable=False)
