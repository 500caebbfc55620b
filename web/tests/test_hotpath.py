"""The counter's tuned path: callers who arrive while an UPDATE is in flight share the next one.
That no 200 is lost or doubled under load, test_faults_* prove on real processes."""

import asyncio

import pytest
from quart import Quart

from counter.config import Settings
from counter.db import get_db
from counter.hotpath import HotCounter
from harness.provision import stored_count


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
