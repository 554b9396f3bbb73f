"""research projects, clinical trials and cohorts: projects with members, sites, time points, subjects
and QC-tracked submissions; folders that belong to a project; the Clinical Trial attributes of a study;
saved cohorts frozen into append-only versions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:37:16.766399
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('protocol_id', sa.String(length=64), nullable=False),
    sa.Column('protocol_name', sa.String(length=200), nullable=False),
    sa.Column('sponsor', sa.String(length=200), nullable=False),
    sa.Column('coordinating_center', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('dates_shifted', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('protocol_id')
    )
    op.create_table('cohorts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cohorts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cohorts_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cohorts_project_id'), ['project_id'], unique=False)

    op.create_table('time_points',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('day', sa.Integer(), nullable=True),
    sa.Column('window_days', sa.Integer(), nullable=True),
    sa.Column('expected_series', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'code', name='uq_time_point')
    )
    with op.batch_alter_table('time_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_time_points_project_id'), ['project_id'], unique=False)

    op.create_table('trial_sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=False),
    sa.Column('ae_titles', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'site_id', name='uq_trial_site')
    )
    with op.batch_alter_table('trial_sites', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trial_sites_project_id'), ['project_id'], unique=False)

    op.create_table('cohort_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('frozen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('frozen_by_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('query', sa.JSON(), nullable=False),
    sa.Column('entries', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohorts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['frozen_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('cohort_id', 'number', name='uq_cohort_version')
    )
    with op.batch_alter_table('cohort_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cohort_versions_cohort_id'), ['cohort_id'], unique=False)

    op.create_table('project_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('PRINCIPAL_INVESTIGATOR', 'COORDINATOR', 'RESEARCHER', 'SITE_UPLOADER', 'VIEWER', name='projectrole', native_enum=False, length=24), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['trial_sites.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'user_id', name='uq_project_member')
    )
    with op.batch_alter_table('project_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_members_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_members_user_id'), ['user_id'], unique=False)

    op.create_table('trial_subjects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['trial_sites.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'subject_id', name='uq_trial_subject')
    )
    with op.batch_alter_table('trial_subjects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trial_subjects_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trial_subjects_site_id'), ['site_id'], unique=False)

    op.create_table('trial_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('time_point_id', sa.Integer(), nullable=True),
    sa.Column('time_point_code', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('RECEIVED', 'PASSED', 'FAILED', 'SUPERSEDED', name='qcstate', native_enum=False, length=16), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('study_date', sa.String(length=8), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=False),
    sa.Column('superseded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subject_id'], ['trial_subjects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['trial_submissions.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['time_point_id'], ['time_points.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('trial_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trial_submissions_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trial_submissions_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trial_submissions_subject_id'), ['subject_id'], unique=False)

    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_folders_project_id'), ['project_id'], unique=False)
        batch_op.create_foreign_key('fk_folders_project_id', 'projects', ['project_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial', sa.JSON(), nullable=False, server_default='{}'))



def downgrade() -> None:
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_column('trial')

    with op.batch_alter_table('folders', schema=None) as batch_op:
        batch_op.drop_constraint('fk_folders_project_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_folders_project_id'))
        batch_op.drop_column('project_id')

    with op.batch_alter_table('trial_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trial_submissions_subject_id'))
        batch_op.drop_index(batch_op.f('ix_trial_submissions_project_id'))
        batch_op.drop_index(batch_op.f('ix_trial_submissions_case_id'))

    op.drop_table('trial_submissions')
    with op.batch_alter_table('trial_subjects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trial_subjects_site_id'))
        batch_op.drop_index(batch_op.f('ix_trial_subjects_project_id'))

    op.drop_table('trial_subjects')
    with op.batch_alter_table('project_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_project_members_project_id'))

    op.drop_table('project_members')
    with op.batch_alter_table('cohort_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cohort_versions_cohort_id'))

    op.drop_table('cohort_versions')
    with op.batch_alter_table('trial_sites', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trial_sites_project_id'))

    op.drop_table('trial_sites')
    with op.batch_alter_table('time_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_time_points_project_id'))

    op.drop_table('time_points')
    with op.batch_alter_table('cohorts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cohorts_project_id'))
        batch_op.drop_index(batch_op.f('ix_cohorts_owner_id'))

    op.drop_table('cohorts')
    op.drop_table('projects')
