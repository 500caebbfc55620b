"""Combine increments of the hot row: requests arriving while an UPDATE is in flight share the next.

The plain path, `increment_counter(conn)` per request, is correct but makes every request queue for
the row lock and pay its own round trip. Here each process keeps at most one counter UPDATE in
flight; requests that arrive meanwhile wait, and the next UPDATE adds all k of them at once:
`LAST_INSERT_ID(count + k)` returns V and the k requests get V-k+1 .. V, each a different number.
No timer is involved, so a lone request on an idle server goes straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from quart import Quart, current_app
from sqlalchemy.ext.asyncio import AsyncEngine

from counter.db import AUTOCOMMIT_ENGINE_KEY, QUERY_TIMEOUT_KEY, unavailable_as_503
from counter.queries import increment_counter

BATCHER_KEY = "counter.increment_batcher"


class IncrementBatcher:
    """Hands out counter values, one UPDATE per batch of concurrent callers."""

    def __init__(self, add: Callable[[int], Awaitable[int]]) -> None:
        self._add = add
        self._waiting: list[asyncio.Future[int]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def increment(self) -> int:
        """Count one and return this caller's own new value."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Flush batches until nobody waits; a failed UPDATE fails exactly the batch it carried."""
        try:
            while self._waiting:
                # Callers that gave up (client gone) before their batch left are not counted.
                batch = [f for f in self._waiting if not f.cancelled()]
                self._waiting = []
                if not batch:
                    continue
                try:
                    last = await self._add(len(batch))
                except Exception as err:
                    for future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                for value, future in enumerate(batch, start=last - len(batch) + 1):
                    if not future.done():
                        future.set_result(value)
        finally:
            self._drainer = None


def init_app(app: Quart) -> None:
    """Create the batcher once serving starts (after the engines exist)."""

    @app.before_serving
    async def open_batcher() -> None:
        engine: AsyncEngine = app.extensions[AUTOCOMMIT_ENGINE_KEY]
        time_limit: float | None = app.extensions.get(QUERY_TIMEOUT_KEY)

        async def add(k: int) -> int:
            # The same bound as a request's own database work: a frozen server fails this batch
            # (its connection is discarded) rather than applying it after the callers got a 503.
            async with asyncio.timeout(time_limit), engine.connect() as conn:
                return await increment_counter(conn, by=k)

        app.extensions[BATCHER_KEY] = IncrementBatcher(add)


async def increment() -> int:
    """Count one visit through the serving app's batcher; an unreachable database is a 503."""
    batcher: IncrementBatcher = current_app.extensions[BATCHER_KEY]
    async with unavailable_as_503():
        return await batcher.increment()
