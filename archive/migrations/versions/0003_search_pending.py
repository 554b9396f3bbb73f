"""search pending queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 05:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('search_pending',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('search_pending', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_pending_case_id'), ['case_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('search_pending', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_pending_case_id'))
    op.drop_table('search_pending')
