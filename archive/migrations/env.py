"""Alembic environment: the engine comes from `archive.db.alembic_config`, never from an ini file.

On SQLite, batch migrations rebuild a table by copying it and dropping the old one; with foreign
keys on, that drop would cascade into every referring table, so they are off while migrating.
"""

from alembic import context

from archive.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=sqlite)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
