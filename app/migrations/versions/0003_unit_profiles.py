"""unit profiles (the feature store) and the profile a decision used

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

`profiles` (per team and unit: features, version, updated_at, expires_at) and
`profile_epochs` (a per-team change counter the workers poll to invalidate their cached
profiles). `decisions` gains `profile_version` and `profile_status`; on PostgreSQL it is
the partitioned parent, and ADD COLUMN on the parent adds the column to every partition
(nullable, no default: no row is rewritten).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('profiles',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.String(length=256), nullable=False),
    sa.Column('features', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_profiles_team_id_teams')),
    sa.PrimaryKeyConstraint('team_id', 'unit_id', name=op.f('pk_profiles'))
    )
    op.create_table('profile_epochs',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                            name=op.f('fk_profile_epochs_team_id_teams')),
    sa.PrimaryKeyConstraint('team_id', name=op.f('pk_profile_epochs'))
    )
    # Plain ALTER TABLE (not batch mode): SQLite adds a nullable column in place, and on
    # PostgreSQL the partitioned parent passes it on to its partitions.
    op.add_column('decisions', sa.Column('profile_version', sa.Integer(), nullable=True))
    op.add_column('decisions', sa.Column('profile_status', sa.String(length=16),
                                         nullable=True))


def downgrade() -> None:
    op.drop_column('decisions', 'profile_status')
    op.drop_column('decisions', 'profile_version')
    op.drop_table('profile_epochs')
    op.drop_table('profiles')
