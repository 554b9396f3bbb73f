"""ingest integrity and accounts: UIDs unique per case (a reused UID opens a separate study), the AE
registry, server-side sessions, expiring and revocable tokens, disabled users, quarantine senders

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:46:05
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# (table, column, name of the new per-parent unique constraint, its columns)
PER_PARENT_UIDS = (
    ('studies', 'study_instance_uid', 'uq_study_in_case', ['case_id', 'study_instance_uid']),
    ('studies', None, 'uq_study_of_sender', ['sender', 'study_instance_uid']),
    ('series', 'series_instance_uid', 'uq_series_in_study', ['study_id', 'series_instance_uid']),
    ('instances', 'sop_instance_uid', 'uq_instance_in_series', ['series_id', 'sop_instance_uid']),
)
SQLITE_UNIQUE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}  # names SQLite's unnamed constraints


def _drop_global_unique(table: str, column: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table(table, naming_convention=SQLITE_UNIQUE_NAMES, recreate='always') as batch_op:
            batch_op.drop_constraint(f'uq_{table}_{column}', type_='unique')
    else:
        op.drop_constraint(f'{table}_{column}_key', table, type_='unique')


def upgrade() -> None:
    op.create_table('registered_aes',
    sa.Column('ae_title', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('trust', sa.Enum('EDGE', 'PACS', 'USER', name='aetrust', native_enum=False, length=8), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ae_title')
    )
    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_sha256')
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.String(length=100), nullable=False, server_default=''))
    for table, column, name, columns in PER_PARENT_UIDS:
        if column is not None:
            _drop_global_unique(table, column)
        with op.batch_alter_table(table, schema=None) as batch_op:
            if column is not None:
                batch_op.create_index(batch_op.f(f'ix_{table}_{column}'), [column], unique=False)
            batch_op.create_unique_constraint(name, columns)

    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.String(length=100), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('author_trusted', sa.Boolean(), nullable=False, server_default=sa.false()))
    _drop_global_unique('submissions', 'manifest_sop_instance_uid')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submissions_manifest_sop_instance_uid'), ['manifest_sop_instance_uid'], unique=False)

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_user_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_quarantine_sender_user_id'), ['sender_user_id'], unique=False)
        batch_op.create_foreign_key('fk_quarantine_sender_user', 'users', ['sender_user_id'], ['id'], ondelete='SET NULL')

    # teaching documents are keyed by the instance they were filed as, not by a claimed SOP UID
    op.create_table('teaching_documents_new',
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('sop_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('study_instance_uid', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instances.id'], name='fk_teaching_documents_instance', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id')
    )
    op.execute(
        "INSERT INTO teaching_documents_new (instance_id, sop_instance_uid, study_instance_uid, content) "
        "SELECT i.id, t.sop_instance_uid, t.study_instance_uid, t.content FROM teaching_documents t "
        "JOIN instances i ON i.sop_instance_uid = t.sop_instance_uid"
    )
    op.drop_table('teaching_documents')
    op.rename_table('teaching_documents_new', 'teaching_documents')
    with op.batch_alter_table('teaching_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teaching_documents_sop_instance_uid'), ['sop_instance_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_teaching_documents_study_instance_uid'), ['study_instance_uid'], unique=False)

    for table, column in (('api_tokens', 'name'), ('users', 'disabled'), ('studies', 'sender'), ('submissions', 'sender'), ('submissions', 'author_trusted')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    raise NotImplementedError("0006 makes UIDs unique per case; going back could merge separate senders' studies")
