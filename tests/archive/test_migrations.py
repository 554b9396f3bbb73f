from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from archive.models import Base


def test_migrations_build_exactly_the_models(casebank):
    """On SQLite and PostgreSQL alike, `alembic upgrade head` leaves nothing for autogenerate to add."""
    with casebank.database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
