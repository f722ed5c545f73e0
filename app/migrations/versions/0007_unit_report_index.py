"""unit-ordered covering index for the unit-level A/B report

The report reads each unit's decisions in time order (window functions per unit, issue
14). `ix_decisions_experiment_unit (experiment_id, unit_id)` gave that order on SQLite but
sent every decision back to the wide table row (context, actions, pmf): 1M random reads
per report at 1M decisions. This index has the columns the report reads, in the order it
reads them, and replaces the old one (it serves the same unit lookups), so a rank still
writes as many index entries as before.

On PostgreSQL the index is built by a plain CREATE INDEX (a partitioned table cannot build
one CONCURRENTLY), which blocks writes to `decisions` while it runs: on a large log, run
this upgrade in a quiet window (docs/operations.md, "Upgrading").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COLUMNS = ['experiment_id', 'unit_id', 'activated_at', 'id', 'arm', 'reward', 'closes_at',
           'phase', 'created_at']


def upgrade() -> None:
    op.create_index('ix_decisions_unit_report', 'decisions', COLUMNS)
    op.drop_index('ix_decisions_experiment_unit', table_name='decisions')


def downgrade() -> None:
    op.create_index('ix_decisions_experiment_unit', 'decisions', ['experiment_id', 'unit_id'])
    op.drop_index('ix_decisions_unit_report', table_name='decisions')
