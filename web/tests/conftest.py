"""Fixtures: one throwaway database per run, migrated by Alembic, and a fresh app on it per test."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from quart import Quart
from quart.testing import QuartClient
from sqlalchemy import update

from counter import create_app
from counter.config import Settings, load_quartenv
from counter.db import get_engine
from counter.tables import counter
from dbutil import migrate, throwaway_database, throwaway_name
from mariadb_server import MariaDB, private_mariadb


@pytest.fixture(scope="session")
def server_settings() -> Settings:
    """The developer's settings (shell, then .quartenv), in development mode."""
    load_quartenv()
    return dataclasses.replace(Settings.from_env(os.environ), environment="development")


@pytest.fixture(scope="session")
def settings(server_settings: Settings) -> Iterator[Settings]:
    """Settings for this run's throwaway database, migrated to head, dropped at the end."""
    name = throwaway_name(server_settings.database_name)
    with throwaway_database(server_settings, name) as test_settings:
        migrate(test_settings)
        yield test_settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """A serving app (before/after_serving hooks run) with the counter back at 0."""
    app = create_app(settings)
    async with app.test_app():
        async with app.app_context(), get_engine().begin() as conn:
            await conn.execute(update(counter).values(count=0))
        yield app


@pytest.fixture
def client(app: Quart) -> QuartClient:
    """A test client for the serving app."""
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def private_db(server_settings: Settings) -> Iterator[tuple[MariaDB, Settings]]:
    """A private MariaDB of the test's own (to stop, freeze, restart), with a migrated database."""
    with private_mariadb() as server:
        yield server, server.migrated_database(server_settings)
