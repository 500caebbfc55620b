"""Fixtures: a throwaway database per run, a fresh app per test, private MariaDB servers."""

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import update

from counter import create_app
from counter.config import Settings, load_quartenv
from counter.db import get_db
from counter.tables import counter
from harness.mariadb import MariaDB
from harness.provision import (
    RootAccessError,
    migrate,
    new_database,
    on_local_port,
    root_connection,
    throwaway_database,
)
from harness.tools import free_port

# Each test copies the data directory and starts a server of its own.
SMALL_SERVER = ["--skip-name-resolve", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"]
PRIVATE_DATABASE = "counter_private_test"


@pytest.fixture(scope="session")
def server_settings() -> Settings:
    """The developer's settings in development mode; the session ends in one line without root."""
    load_quartenv()
    settings = Settings.from_env({**os.environ, "QUART_ENV": "development"})
    try:
        root_connection(settings).close()
    except RootAccessError as err:
        pytest.exit(f"the tests need root to create their database: {err}", returncode=3)
    return settings


@pytest.fixture(scope="session")
def settings(server_settings: Settings) -> Iterator[Settings]:
    """Settings for this run's throwaway database, migrated to head, dropped at the end."""
    with throwaway_database(server_settings) as test_settings:
        migrate(test_settings)
        yield test_settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """A serving app (before/after_serving hooks run) with the counter back at 0."""
    app = create_app(settings)
    async with app.test_app():
        async with app.app_context(), get_db().engine.begin() as conn:
            await conn.execute(update(counter).values(count=0))
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    """A test client for the serving app."""
    return app.test_client()


@pytest.fixture(scope="session")
def private_datadir(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data with root over TCP and PRIVATE_DATABASE migrated, for each test to copy."""
    server = MariaDB(tmp_path_factory.mktemp("private"), free_port(), SMALL_SERVER)
    server.initialise()
    server.start()
    try:
        server.allow_root_over_tcp(os.environ.get("MYSQL_ROOT_PASSWORD", ""))
        migrate(new_database(on_local_port(server_settings, server.port), PRIVATE_DATABASE))
    finally:
        server.stop()
    return server.datadir


@pytest.fixture
def private_server(private_datadir: Path, tmp_path: Path) -> Iterator[MariaDB]:
    """A MariaDB of this test's own, to stop, kill, freeze and restart."""
    server = MariaDB(tmp_path / "mariadb", free_port(), SMALL_SERVER).copy_data(private_datadir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_settings(server_settings: Settings, private_server: MariaDB) -> Settings:
    """Settings for the migrated database on `private_server`."""
    on_private = on_local_port(server_settings, private_server.port)
    return dataclasses.replace(on_private, database_name=PRIVATE_DATABASE)
