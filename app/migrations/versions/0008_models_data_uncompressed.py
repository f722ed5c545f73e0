"""model snapshots stored without compression (PostgreSQL)

A snapshot is VW's saved model: float weights, which PostgreSQL's default TOAST
compression (pglz) cannot shrink. It tried on every snapshot anyway and then stored the
bytes as they were: `bench/marks.py` measured 39-41 ms of the server's CPU per 1.5 MB
snapshot with compression against 5-12 ms without, the stored size unchanged (1,553,888
bytes both ways). The learner publishes a snapshot as often as every second, so that was
the largest part of its database work. `STORAGE EXTERNAL` keeps the bytes out of line
(TOAST) and uncompressed; rows already stored keep their form. SQLite: nothing to do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE models ALTER COLUMN data SET STORAGE EXTERNAL')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE models ALTER COLUMN data SET STORAGE EXTENDED')
