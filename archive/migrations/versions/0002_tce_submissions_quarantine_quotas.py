"""tce submissions quarantine quotas

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:20:25.624145
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('teaching_documents',
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('sop_instance_uid')
    )
    with op.batch_alter_table('teaching_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teaching_documents_study_instance_uid'), ['study_instance_uid'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('sop_class_uid', sa.String(length=64), nullable=False),
    sa.Column('blob_sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('calling_ae', sa.String(length=16), nullable=False),
    sa.Column('called_ae', sa.String(length=16), nullable=False),
    sa.Column('state', sa.Enum('HELD', 'RELEASED', 'DELETED', name='quarantinestate', native_enum=False, length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_sop_instance_uid'), ['sop_instance_uid'], unique=False)

    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('manifest_sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('WAITING', 'COMPLETE', 'INCOMPLETE', name='submissionstate', native_enum=False, length=16), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('observer_name', sa.String(length=200), nullable=False),
    sa.Column('delay_reason', sa.String(length=200), nullable=False),
    sa.Column('calling_ae', sa.String(length=16), nullable=False),
    sa.Column('called_ae', sa.String(length=16), nullable=False),
    sa.Column('sender_user_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sender_user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('manifest_sop_instance_uid')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submissions_deadline_at'), ['deadline_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_submissions_study_instance_uid'), ['study_instance_uid'], unique=False)

    op.create_table('submission_references',
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('submission_id', 'sop_instance_uid')
    )
    with op.batch_alter_table('submission_references', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_references_sop_instance_uid'), ['sop_instance_uid'], unique=False)
    op.create_table('instance_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('blob_sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('calling_ae', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('instance_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_conflicts_instance_id'), ['instance_id'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.Enum('PENDING', 'COMPLETE', 'INCOMPLETE', 'NEEDS_DETAILS', name='casestatus', native_enum=False, length=16), nullable=False, server_default='COMPLETE'))
        batch_op.add_column(sa.Column('missing', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('notice', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('teaching_extra', sa.JSON(), nullable=False, server_default='{}'))
    op.execute("UPDATE cases SET status = 'NEEDS_DETAILS' WHERE needs_details")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('needs_details')

    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('limit_is_hard', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('limit_notice_sent', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.drop_column('limit_notice_sent')
        batch_op.drop_column('limit_is_hard')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_details', sa.BOOLEAN(), nullable=False, server_default=sa.false()))
        batch_op.drop_column('teaching_extra')
        batch_op.drop_column('notice')
        batch_op.drop_column('missing')
        batch_op.drop_column('status')

    with op.batch_alter_table('instance_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_conflicts_instance_id'))

    op.drop_table('instance_conflicts')
    op.drop_table('submission_references')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submissions_study_instance_uid'))
        batch_op.drop_index(batch_op.f('ix_submissions_deadline_at'))

    op.drop_table('submissions')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_sop_instance_uid'))

    op.drop_table('quarantine')
    with op.batch_alter_table('teaching_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_teaching_documents_study_instance_uid'))

    op.drop_table('teaching_documents')
