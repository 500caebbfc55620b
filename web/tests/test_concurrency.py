"""Atomicity: concurrent increments lose no update and never hand out a number twice."""

import asyncio

from quart import Quart
from quart.testing import QuartClient

from counting import stored_count

CONCURRENT_REQUESTS = 200


async def test_concurrent_increments_are_all_counted_and_distinct(
    app: Quart, client: QuartClient
) -> None:
    before = await stored_count(app)
    responses = await asyncio.gather(
        *(client.post("/api/counter") for _ in range(CONCURRENT_REQUESTS))
    )
    assert {r.status_code for r in responses} == {200}
    values = [(await r.get_json())["count"] for r in responses]
    assert len(set(values)) == CONCURRENT_REQUESTS
    assert sorted(values) == list(range(before + 1, before + CONCURRENT_REQUESTS + 1))
    assert await stored_count(app) == before + CONCURRENT_REQUESTS
