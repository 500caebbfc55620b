"""Readiness: a database not migrated, or without its counter row, answers 503 "run `make
migrate`" on every path until `make migrate` repairs it. (/healthz is proven in test_faults_*.)"""

import asyncio

from quart.typing import TestClientProtocol as Client
from sqlalchemy import delete

from counter import create_app
from counter.config import Settings
from counter.db import get_db
from counter.tables import counter
from harness.provision import migrate, throwaway_database


async def assert_503_run_make_migrate(client: Client) -> None:
    """Every path that needs the database says what to do."""
    for path in ("/readyz", "/", "/api/counter"):
        response = await client.get(path)
        assert response.status_code == 503, path
        assert "run `make migrate`" in await response.get_data(as_text=True)


async def test_unmigrated_or_rowless_database_is_503_until_make_migrate(
    server_settings: Settings,
) -> None:
    with throwaway_database(server_settings) as empty:
        app = create_app(empty)
        async with app.test_app():
            client = app.test_client()
            await assert_503_run_make_migrate(client)
            await asyncio.to_thread(migrate, empty)  # what the advice says: alembic upgrade head
            assert (await client.get("/readyz")).status_code == 200
            async with app.app_context(), get_db().engine.begin() as conn:
                await conn.execute(delete(counter))
            await assert_503_run_make_migrate(client)
            await asyncio.to_thread(migrate, empty)  # the migration environment restores the row
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/api/counter")).status_code == 200
