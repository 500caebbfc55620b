"""The counter's tuned path: batched increments lose nothing and double nothing."""

import asyncio

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from counter.config import Settings
from counter.db import get_db
from counter.hotpath import HotCounter
from harness.provision import stored_count


async def test_concurrent_increments_are_all_counted_and_distinct(
    client: Client, settings: Settings
) -> None:
    responses = await asyncio.gather(*(client.post("/api/counter") for _ in range(200)))
    assert {r.status_code for r in responses} == {200}
    assert sorted([(await r.get_json())["count"] for r in responses]) == list(range(1, 201))
    assert stored_count(settings) == 200


async def test_callers_arriving_during_a_flight_share_the_next_update(
    app: Quart, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    batches: list[int] = []
    real_add = HotCounter._add

    async def recording_add(self: HotCounter, k: int) -> int:
        batches.append(k)
        return await real_add(self, k)

    monkeypatch.setattr(HotCounter, "_add", recording_add)
    async with app.app_context():
        hot = get_db().counter
        first = asyncio.ensure_future(hot.increment())
        await asyncio.sleep(0)  # its UPDATE is now in flight
        values = await asyncio.gather(first, *(hot.increment() for _ in range(49)))
    assert sorted(values) == list(range(1, 51))
    assert batches == [1, 49]  # the first flew alone; the 49 queued behind it shared one UPDATE
    assert stored_count(settings) == 50
