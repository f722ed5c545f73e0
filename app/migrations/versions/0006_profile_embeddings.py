"""stored embeddings of profiles and catalogs (their `embedding` fields, embedded when
written); an index for the purge of expired profiles

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

`profiles.embeddings`: the vectors of the profile's fields that an experiment of the team
declares `embedding`, computed by the write (PUT, PATCH, batch) so that rank reads them
instead of running the sentence model (`experiments.stored_embeddings`). Nullable, no
default: existing rows are not rewritten (a profile written before has none; rank embeds
its text as it embeds text sent at rank time until the profile is written again).

`catalog_embeddings` (experiment → text → vector of its catalog's `embedding` action
fields), written at registration and at every configuration change; rank reads them with
the experiment. Existing experiments get theirs at their next change (until then a
worker embeds the catalog when it starts, as before).

`ix_profiles_expires_at`: the learner's periodic purge of profiles past their TTL
(`experiments.retention.purge_profiles`) finds them without reading the whole table.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.add_column('profiles', sa.Column('embeddings', JSON, nullable=True))
    op.create_table('catalog_embeddings',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('vectors', JSON, nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'],
                            name=op.f('fk_catalog_embeddings_experiment_id_experiments')),
    sa.PrimaryKeyConstraint('experiment_id', name=op.f('pk_catalog_embeddings'))
    )
    op.create_index('ix_profiles_expires_at', 'profiles', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_profiles_expires_at', table_name='profiles')
    op.drop_table('catalog_embeddings')
    op.drop_column('profiles', 'embeddings')
