"""catalog tables

Revision ID: catalog_0001
Revises: 
Create Date: 2026-11-25 16:22:04.751027
"""
from alembic import op
import sqlalchemy as sa


revision = 'catalog_0001'
down_revision = None
branch_labels = ('catalog',)
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_locations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('root_id', sa.String(length=36), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('entity_ref', sa.Text(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('next_refresh_at', sa.Float(), nullable=False),
    sa.Column('last_read_at', sa.Float(), nullable=True),
    sa.Column('last_duration_ms', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('errors', sa.Text(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['catalog_locations.id'], name=op.f('fk_catalog_locations_parent_id_catalog_locations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_locations')),
    sa.UniqueConstraint('key', name=op.f('uq_catalog_locations_key'))
    )
    with op.batch_alter_table('catalog_locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_locations_next_refresh_at'), ['next_refresh_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_locations_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_locations_root_id'), ['root_id'], unique=False)

    op.create_table('catalog_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_state'))
    )
    op.create_table('catalog_relations',
    sa.Column('origin_uid', sa.String(length=36), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('target', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('catalog_relations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalog_relations_origin_uid'), ['origin_uid'], unique=False)
        batch_op.create_index('ix_catalog_relations_source_type_target', ['source', 'type', 'target'], unique=False)
        batch_op.create_index('ix_catalog_relations_type_target', ['type', 'target'], unique=False)

    op.create_table('catalog_search',
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=True),
    sa.Column('original', sa.String(length=255), nullable=True)
    )
    with op.batch_alter_table('catalog_search', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_search_key_value', ['key', 'value', 'uid'], unique=False)
        batch_op.create_index('ix_catalog_search_uid_key', ['uid', 'key', 'value'], unique=False)

    op.create_table('catalog_entities',
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('ref', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('namespace', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('location_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('hash', sa.String(length=40), nullable=False),
    sa.Column('etag', sa.String(length=40), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('orphan', sa.Boolean(), nullable=False),
    sa.Column('errors', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['catalog_locations.id'], name=op.f('fk_catalog_entities_location_id_catalog_locations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('uid', name=op.f('pk_catalog_entities')),
    sa.UniqueConstraint('ref', name=op.f('uq_catalog_entities_ref'))
    )
    with op.batch_alter_table('catalog_entities', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_entities_kind_namespace_name', ['kind', 'namespace', 'name'], unique=False)
        batch_op.create_index('ix_catalog_entities_name', ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_entities_location_id'), ['location_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_catalog_entities_updated_at'), ['updated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('catalog_entities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_entities_updated_at'))
        batch_op.drop_index(batch_op.f('ix_catalog_entities_location_id'))
        batch_op.drop_index('ix_catalog_entities_name')
        batch_op.drop_index('ix_catalog_entities_kind_namespace_name')

    op.drop_table('catalog_entities')
    with op.batch_alter_table('catalog_search', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_search_uid_key')
        batch_op.drop_index('ix_catalog_search_key_value')

    op.drop_table('catalog_search')
    with op.batch_alter_table('catalog_relations', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_relations_type_target')
        batch_op.drop_index('ix_catalog_relations_source_type_target')
        batch_op.drop_index(batch_op.f('ix_catalog_relations_origin_uid'))

    op.drop_table('catalog_relations')
    op.drop_table('catalog_state')
    with op.batch_alter_table('catalog_locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalog_locations_root_id'))
        batch_op.drop_index(batch_op.f('ix_catalog_locations_parent_id'))
        batch_op.drop_index(batch_op.f('ix_catalog_locations_next_refresh_at'))

    op.drop_table('catalog_locations')
