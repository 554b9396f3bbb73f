"""Engine, sessions and migrations; the one place that knows how a database is reached."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import logging

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from .models import SearchPending

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

CasesChanged = Callable[[set[int]], None]
MailSender = Callable[[list], None]  # receives archive.mail.OutgoingMail items after commit


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'casebank.sqlite3').resolve()}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a C-STORE is acknowledged only after this commit
    cursor.execute("PRAGMA busy_timeout=30000")
    files = [row[2] for row in cursor.execute("PRAGMA database_list") if row[2]]
    cursor.close()
    for name in files:
        _owner_only(Path(name))


def _owner_only(database: Path) -> None:
    """The database (and its WAL and shared-memory files) hold patients' study metadata and
    password hashes: readable by the archive's own user only."""
    for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        try:
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:  # owned by another user (a shared test database): leave it
            pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


class Database:
    """Sessions with a unit-of-work boundary; listeners hear which cases changed after each commit.

    Services call `mark_case_changed`; the search index subscribes with `on_cases_changed`, so the
    domain never imports the search package.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._listeners: list[CasesChanged] = []
        self.send_mail: MailSender | None = None

    def migrate(self) -> None:
        migrate(self.engine)

    def on_cases_changed(self, listener: CasesChanged) -> None:
        self._listeners.append(listener)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        session = self._sessions()
        try:
            yield session
            _queue_for_search(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            changed: set[int] = session.info.pop("changed_cases", set())
            mail: list = session.info.pop("mail", [])
            session.close()
        if changed:
            self.notify(changed)
        if mail and self.send_mail is not None:
            try:
                self.send_mail(mail)
            except Exception:  # the work is committed; a mail server outage must not undo it
                log.exception("could not send %d mail(s)", len(mail))

    def notify(self, case_ids: Iterable[int]) -> None:
        ids = set(case_ids)
        for listener in self._listeners:
            listener(ids)

    def dispose(self) -> None:
        self.engine.dispose()


def _queue_for_search(session: Session) -> None:
    """Changed cases join the search queue in the same transaction as the change itself."""
    changed = session.info.get("changed_cases")
    if changed:
        session.add_all([SearchPending(case_id=case_id) for case_id in sorted(changed)])


def mark_case_changed(session: Session, case_id: int) -> None:
    session.info.setdefault("changed_cases", set()).add(case_id)
