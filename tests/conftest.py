from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Casebank
from api.settings import Settings
from archive import users
from archive.models import User

from .csrf_client import BrowserLikeClient
from .peers import LiveServer, create_database, free_port, postgres_cluster

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that uses the archive runs on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'casebank.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"casebank_test_{next(_database_numbers)}")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data=tmp_path / "data",
        database_url=database_url,
        dicom_port=free_port(),
        secret_key="test-secret",
    )


@pytest.fixture
def casebank(settings: Settings) -> Iterator[Casebank]:
    cb = Casebank.open(settings)
    yield cb
    cb.close()


MakeUser = Callable[..., User]


def password_of(name: str) -> str:
    """The test users' password: long and uncommon enough for the password policy."""
    return f"pw-{name}-for-tests-only"


@pytest.fixture
def make_user(casebank: Casebank) -> MakeUser:
    """Creates a user with password password_of(name) and GMC derived from the name."""
    numbers = itertools.count(7000001)

    def make(name: str, admin: bool = False) -> User:
        with casebank.database.session() as session:
            return users.add_user(
                session, name, email=f"{name}@hospital.example", gmc=str(next(numbers)),
                display_name=f"Dr {name.title()}", password=password_of(name), admin=admin,
            ).user

    return make


@pytest.fixture
def client(casebank: Casebank) -> Iterator[TestClient]:
    with BrowserLikeClient(create_app(casebank)) as test_client:
        yield test_client


@pytest.fixture
def live(casebank: Casebank) -> Iterator[LiveServer]:
    with LiveServer(casebank) as server:
        yield server


def login(client: TestClient, name: str) -> None:
    response = client.post("/api/session", json={"username": name, "password": password_of(name)})
    assert response.status_code == 200, response.text
