"""offline jobs (Personalizer evaluations and feature importances)

Revision ID: 0005
Revises: 0004 (0002 on its own branch; re-chained after merging i12data)
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('offline_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('job_id', sa.String(length=256), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('request', JSON, nullable=False),
    sa.Column('result', JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('start_time', sa.Double(), nullable=False),
    sa.Column('end_time', sa.Double(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_offline_jobs_experiment_id_experiments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offline_jobs')),
    sa.UniqueConstraint('experiment_id', 'kind', 'job_id', name=op.f('uq_offline_jobs_experiment_id_kind_job_id'))
    )


def downgrade() -> None:
    op.drop_table('offline_jobs')
