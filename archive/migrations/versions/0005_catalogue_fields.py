"""catalogue fields: each folder's custom fields with their types and choices

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalogue_fields',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('folder_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('type', sa.Enum('KEYWORD', 'NUMBER', 'DATE', name='fieldtype', native_enum=False, length=16), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['folder_id'], ['folders.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('folder_id', 'name', name='uq_catalogue_field')
    )
    with op.batch_alter_table('catalogue_fields', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_fields_folder_id'), ['folder_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('catalogue_fields', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_fields_folder_id'))
    op.drop_table('catalogue_fields')
