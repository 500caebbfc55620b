"""The database: a connection pool per process, opened when serving starts, and `transaction()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from quart import Quart, current_app
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from counter.breaker import CircuitBreaker
from counter.compat import tolerate_closed_transports
from counter.config import Settings
from counter.dberrors import unavailable_as_503
from counter.hotpath import HotCounter

EXTENSION_KEY = "counter.db"


def create_engine(settings: Settings, **options: Any) -> AsyncEngine:
    """A pooled engine for this process; each server process builds its own."""
    engine = create_async_engine(
        settings.database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # Replace a connection the server dropped (restart, wait_timeout) instead of failing.
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            # The server gives up on a lock before we do, so a statement we abandoned for a 503
            # is not committed later (both variables exist on MySQL 8 and MariaDB).
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {settings.db_lock_wait}, "
            f"lock_wait_timeout = {settings.db_lock_wait}",
        },
        **options,
    )
    tolerate_closed_transports(engine)
    return engine


@dataclass
class Database:
    """All the database state a serving process holds, under one key (quart-db's shape)."""

    engine: AsyncEngine
    query_timeout: float
    breaker: CircuitBreaker
    # The page counter's tuned path (hotpath.py); your own tables use `transaction()`.
    counter: HotCounter

    @classmethod
    def open(cls, settings: Settings) -> Database:
        """Create the pools; connections are made on first use."""
        breaker = CircuitBreaker()
        hot_engine = create_engine(settings, **HotCounter.ENGINE_OPTIONS)
        return cls(
            engine=create_engine(settings),
            query_timeout=settings.db_query_timeout,
            breaker=breaker,
            counter=HotCounter(hot_engine, breaker, settings),
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        await self.counter.engine.dispose()


def init_app(app: Quart, settings: Settings) -> None:
    """Open the database when serving starts and close it when serving stops."""

    @app.before_serving
    async def open_database() -> None:
        app.extensions[EXTENSION_KEY] = Database.open(settings)

    @app.after_serving
    async def close_database() -> None:
        await app.extensions.pop(EXTENSION_KEY).close()


def get_db() -> Database:
    """The serving app's database."""
    return cast(Database, current_app.extensions[EXTENSION_KEY])


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """One pooled connection in one transaction: committed at the end, rolled back on error.

    An unreachable or slow database (over DB_QUERY_TIMEOUT) becomes a 503.
    """
    db = get_db()
    async with unavailable_as_503(db.breaker, db.query_timeout), db.engine.begin() as conn:
        yield conn
