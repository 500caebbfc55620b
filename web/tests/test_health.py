"""Health probes: liveness never touches the database, readiness does."""

import dataclasses

from quart.testing import QuartClient

from counter import create_app
from counter.config import Settings


async def test_healthz_and_readyz_ok(client: QuartClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert await ready.get_json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    # Port 1 on loopback refuses at once: the database "is down".
    app = create_app(dataclasses.replace(settings, db_port=1))
    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert (await ready.get_json())["error"]["code"] == "database_unavailable"
        page = await client.get("/")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "5"
        assert "Traceback" not in await page.get_data(as_text=True)
