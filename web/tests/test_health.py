"""Health probes: liveness never touches the database; readiness checks what serving needs."""

import asyncio
import dataclasses

from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import delete

from counter import create_app
from counter.config import Settings
from counter.db import get_db
from counter.tables import counter
from harness.provision import migrate, throwaway_database


async def assert_503_run_make_migrate(client: Client, *paths: str) -> None:
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 503, path
        assert "run `make migrate`" in await response.get_data(as_text=True)


async def test_healthz_and_readyz_ok(client: Client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert (ready.status_code, await ready.get_json()) == (200, {"status": "ready"})


async def test_a_deleted_counter_row_is_503_until_make_migrate_repairs_it(
    app: Quart, client: Client, settings: Settings
) -> None:
    async with app.app_context(), get_db().engine.begin() as conn:
        await conn.execute(delete(counter))
    await assert_503_run_make_migrate(client, "/readyz", "/", "/api/counter")
    await asyncio.to_thread(migrate, settings)  # what the advice says: alembic upgrade head
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/api/counter")).status_code == 200


async def test_an_unmigrated_database_is_503_with_the_advice(settings: Settings) -> None:
    with throwaway_database(settings) as empty:
        app = create_app(dataclasses.replace(empty, environment="development"))
        async with app.test_app():
            client = app.test_client()
            assert (await client.get("/healthz")).status_code == 200
            await assert_503_run_make_migrate(client, "/readyz", "/")
