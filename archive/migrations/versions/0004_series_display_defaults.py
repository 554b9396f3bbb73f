"""series display defaults (window and crop saved for the viewer)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_window_center', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('default_window_width', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('default_crop', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('series', schema=None) as batch_op:
        batch_op.drop_column('default_crop')
        batch_op.drop_column('default_window_width')
        batch_op.drop_column('default_window_center')
