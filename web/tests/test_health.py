"""Readiness: a database not migrated, or without its counter row, answers 503 "run `make
migrate`" on every path until `make migrate` repairs it. (/healthz: test_faults_outage.)"""

import asyncio

from quart.typing import TestClientProtocol as Client
from sqlalchemy import delete

from counter import create_app
from counter.config import Settings
from counter.db import get_db
from counter.tables import counter
from harness.provision import migrate, throwaway_database


async def assert_503_until_make_migrate(client: Client, settings: Settings) -> None:
    """Every path says "run `make migrate`"; once it has run, they answer 200."""
    for path in ("/readyz", "/", "/api/counter"):
        response = await client.get(path)
        assert response.status_code == 503, path
        assert "run `make migrate`" in await response.get_data(as_text=True)
    await asyncio.to_thread(migrate, settings)  # what the advice says: alembic upgrade head
    for path in ("/readyz", "/", "/api/counter"):
        assert (await client.get(path)).status_code == 200, path


async def test_unmigrated_or_rowless_database_is_503_until_make_migrate(
    server_settings: Settings,
) -> None:
    with throwaway_database(server_settings) as empty:
        app = create_app(empty)
        async with app.test_app():
            await assert_503_until_make_migrate(app.test_client(), empty)
            async with app.app_context(), get_db().engine.begin() as conn:
                await conn.execute(delete(counter))  # the migration environment restores it
            await assert_503_until_make_migrate(app.test_client(), empty)
