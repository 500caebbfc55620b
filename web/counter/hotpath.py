"""The counter's tuned path: when one hot row takes every request. Your own tables don't need it.

Measured on `GET /` (web/bench/README.md): from 258 to about 1,000 requests/s per process.
- Batching: each process keeps at most one counter UPDATE in flight; requests that arrive meanwhile
  share the next one. `LAST_INSERT_ID(count + k)` returns V, and the k callers get V-k+1 .. V.
- Autocommit: the UPDATE commits by itself, so no BEGIN, COMMIT or pool-return ROLLBACK trips.
- `render()` uses Jinja's cache directly: Quart's render_template runs its synchronous context
  processor in a thread on every call, which was the page's largest single cost.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from quart import current_app, request
from sqlalchemy.ext.asyncio import AsyncEngine

from counter import metrics
from counter.breaker import CircuitBreaker
from counter.config import Settings
from counter.dberrors import unavailable_as_503
from counter.queries import increment_counter, select_count


class HotCounter:
    """Hands out counter values, one autocommitted UPDATE per batch of concurrent callers."""

    # skip_autocommit_rollback: https://docs.sqlalchemy.org/en/20/core/connections.html
    ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {
        "isolation_level": "AUTOCOMMIT",
        "skip_autocommit_rollback": True,
    }

    def __init__(self, engine: AsyncEngine, breaker: CircuitBreaker, settings: Settings) -> None:
        self.engine = engine
        self._breaker = breaker
        self._budget = settings.db_query_timeout
        # A batch waits at most this long for its UPDATE: the server's own lock wait, plus a
        # margin. It leaves only if every caller can wait that long, so no caller has its 503
        # before the server has given up too (a frozen server is the one exception).
        self._statement_limit = settings.db_lock_wait + 0.5
        self._waiting: list[tuple[float, asyncio.Future[int]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def count_visit(self) -> int:
        """Count one page view and return its number; HEAD (routed to GET views) only reads."""
        if request.method == "HEAD":
            async with (
                unavailable_as_503(self._breaker, self._budget),
                self.engine.connect() as conn,
            ):
                return await select_count(conn)
        return await self.increment()

    async def increment(self) -> int:
        """Count one and return this caller's own new value; a 503 if the database fails."""
        loop = asyncio.get_running_loop()
        async with unavailable_as_503(self._breaker, self._budget):
            future: asyncio.Future[int] = loop.create_future()
            self._waiting.append((loop.time() + self._budget, future))
            if self._drainer is None:
                self._drainer = asyncio.create_task(self._drain())
            return await future

    async def _add(self, k: int) -> int:
        metrics.BATCH_SIZE.observe(k)
        # A frozen server fails this batch (its connection is discarded) within the limit.
        async with asyncio.timeout(self._statement_limit), self.engine.connect() as conn:
            return await increment_counter(conn, by=k)

    def _next_batch(self) -> list[asyncio.Future[int]]:
        """Take the waiting callers; fail those with too little time left for the statement."""
        now = asyncio.get_running_loop().time()
        batch = []
        for deadline, future in self._waiting:
            if future.done():  # gave up (client gone, timed out) before its batch left
                continue
            if deadline - now < self._statement_limit + 0.25:
                future.set_exception(TimeoutError("no time left to wait for the database"))
                continue
            batch.append(future)
        self._waiting = []
        return batch

    async def _drain(self) -> None:
        """Flush batches until nobody waits; a failed UPDATE fails its batch and those queued."""
        try:
            while self._waiting:
                batch = self._next_batch()
                if not batch:
                    continue
                try:
                    last = await self._add(len(batch))
                except Exception as err:
                    # Those queued behind a failed batch fail with it: the breaker is open now.
                    for future in batch + [f for _, f in self._waiting]:
                        if not future.done():
                            future.set_exception(err)
                    self._waiting = []
                    continue
                for value, future in enumerate(batch, start=last - len(batch) + 1):
                    if not future.done():
                        future.set_result(value)
        finally:
            self._drainer = None


async def render(template: str, **context: object) -> str:
    """Render a page or an error page straight from Jinja's cache (url_for etc. still work)."""
    return await current_app.jinja_env.get_template(template).render_async(**context)
