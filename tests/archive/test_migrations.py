from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from archive.models import Base


def test_migrations_build_exactly_the_models(casebank):
    """On SQLite and PostgreSQL alike, `alembic upgrade head` leaves nothing for autogenerate to add."""
    with casebank.database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_upgrading_to_per_case_uids_keeps_every_row_and_report(database_url):
    """0006 rebuilds studies, series, instances and teaching documents (on SQLite by copying each
    table): an archive filled under 0005 keeps every study, series, instance and pending report."""
    from alembic import command
    from sqlalchemy import text

    from archive.db import alembic_config, make_engine

    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), "0005")
    with engine.begin() as c:
        c.execute(text("INSERT INTO folders (id, name, kind, limit_is_hard, limit_notice_sent, created_at) "
                       "VALUES (1, 'Unclaimed', 'INBOX', false, false, CURRENT_TIMESTAMP)"))
        c.execute(text(
            "INSERT INTO cases (id, folder_id, title, history, findings, diagnosis, differential, discussion, keywords,"
            " custom_fields, author_name, author_gmc, status, missing, notice, teaching_extra, created_at, updated_at)"
            " VALUES (1, 1, 't', '', '', '', '', '', '[]', '{}', '', '', 'PENDING', '[]', '', '{}',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO studies (id, case_id, study_instance_uid, study_date, description, procedure_code,"
                       " patient_age, patient_sex) VALUES (1, 1, '1.2.3', '', '', '', '', '')"))
        c.execute(text("INSERT INTO series (id, study_id, series_instance_uid, modality, body_part, description)"
                       " VALUES (1, 1, '1.2.3.1', 'CT', '', '')"))
        c.execute(text("INSERT INTO instances (id, series_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid,"
                       " size_bytes, blob_sha256, received_at) VALUES (1, 1, '1.2.3.1.1', '1.2', '1.2.840.10008.1.2.1',"
                       " 10, 'ab', CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO teaching_documents (sop_instance_uid, study_instance_uid, content)"
                       " VALUES ('1.2.3.1.1', '1.2.3', '{\"title\": \"kept\"}')"))
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM series")).scalar() == 1  # not cascaded away by a rebuild
        assert c.execute(text("SELECT COUNT(*) FROM instances")).scalar() == 1
        assert c.execute(text("SELECT instance_id, content FROM teaching_documents")).one()[0] == 1
        assert c.execute(text("SELECT sender FROM studies")).scalar() == ""
    engine.dispose()
