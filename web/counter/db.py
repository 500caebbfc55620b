"""The process's one AsyncEngine: created when serving starts, disposed when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quart import Quart, current_app
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from counter.config import Settings
from counter.errors import DatabaseUnavailableError

ENGINE_KEY = "counter.engine"

# What a lost, refused or timed-out database looks like from here; anything else is a bug (500).
UNAVAILABLE_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    asyncio.TimeoutError,
)


def create_engine(settings: Settings) -> AsyncEngine:
    """A pooled engine for this process; each Hypercorn worker builds its own."""
    return create_async_engine(
        settings.database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # A request waits this long for a free pooled connection before it gets a 503.
        pool_timeout=10,
        # Pings a connection before handing it out, so one the server dropped (restart,
        # wait_timeout) is replaced instead of failing a request.
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


def init_app(app: Quart, settings: Settings) -> None:
    """Open the engine in before_serving and dispose of it in after_serving."""

    @app.before_serving
    async def open_engine() -> None:
        app.extensions[ENGINE_KEY] = create_engine(settings)

    @app.after_serving
    async def dispose_engine() -> None:
        engine: AsyncEngine = app.extensions.pop(ENGINE_KEY)
        await engine.dispose()


def get_engine() -> AsyncEngine:
    """The serving app's engine."""
    engine: AsyncEngine = current_app.extensions[ENGINE_KEY]
    return engine


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """One pooled connection in one transaction; an unreachable database becomes a 503."""
    try:
        async with get_engine().begin() as conn:
            yield conn
    except UNAVAILABLE_ERRORS as err:
        current_app.logger.warning("database unavailable: %s", getattr(err, "orig", None) or err)
        raise DatabaseUnavailableError() from err
